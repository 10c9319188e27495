#!/usr/bin/env python3
"""Write the seed corpora of fuzz/corpus/ (run from anywhere; rewrites them).

Each seed is what the target's peer would really send, made by CPython 3.11
itself: pickles from pickle.dumps, frames as Connection.send_bytes writes
them, challenge exchanges with real HMACs, manager requests as a proxy's
_callmethod sends them, tracker lines as ResourceTracker._send writes them.
The targets read the inputs as fuzz/fuzz_<target>.cpp describes.
"""
import hashlib
import hmac
import os
import pickle
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
AUTHKEY = b"fuzz authkey"          # the key the connection target uses
IDENT = "dict0ident00"             # replaced by the dict's ident (fuzz_managers.cpp)


def frame(payload):
    """Connection._send_bytes: 4-byte big-endian length, or -1 and 8 bytes."""
    if len(payload) > 0x7fffffff:
        raise ValueError("too long for a seed")
    return struct.pack("!i", len(payload)) + payload


def long_frame(payload):
    """The 8-byte form, which CPython writes above 2 GiB; any length reads."""
    return struct.pack("!i", -1) + struct.pack("!Q", len(payload)) + payload


def write(target, name, data):
    directory = os.path.join(HERE, "corpus", target)
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, name), "wb") as f:
        f.write(data)


def pickles():
    values = {
        "none": None, "true": True, "int_small": 7, "int_neg": -300,
        "int_big": 2**62 + 5, "float": 2.25, "str": "hello, world",
        "str_utf8": "h\u00e9llo \u2603", "bytes": b"\x00\x01binary\xff",
        "bytearray": bytearray(b"abc"), "tuple": (1, "a", None),
        "list": [1, 2.5, "x", [3, 4]], "dict": {"a": 1, "b": [1, 2], 3: "c"},
        "set": {1, 2, 3}, "frozenset": frozenset({"x"}),
        "nested": {"k": [(1, 2), {"i": {"j": []}}]}, "empty": ([], {}, (), ""),
        "shared": (lambda s: [s, s, s])("repeated string"),
        "manager_request": (IDENT, "__setitem__", ("key", [1, 2]), {}),
    }
    for name, value in values.items():
        for protocol in (2, 3, 4, 5):
            write("pickle", f"{name}_p{protocol}", pickle.dumps(value, protocol))
    # Protocol 0 and 1, which loads() reads too.
    write("pickle", "list_p0", pickle.dumps([1, "a", (2.5,)], 0))
    write("pickle", "dict_p1", pickle.dumps({"a": (1, 2)}, 1))
    # Hostile: a BINUNICODE8 announcing 2**60 bytes; a BINBYTES announcing
    # 4 GiB - 1; 5,000 nested lists; a forbidden global.
    write("pickle", "huge_length_str", b"\x80\x04\x8d" + struct.pack("<Q", 2**60) + b"abc.")
    write("pickle", "huge_length_bytes", b"\x80\x03B" + struct.pack("<I", 2**32 - 1) + b"abc.")
    write("pickle", "deep_lists", b"\x80\x04" + b"]" * 5000 + b"a" * 4999 + b".")
    write("pickle", "forbidden_global", pickle.dumps(os.system, 4))


def connection():
    mode = lambda n: bytes([n])
    write("connection", "recv_bytes_two", mode(0) + frame(b"hello") + frame(b""))
    write("connection", "recv_bytes_long_header", mode(0) + long_frame(b"long form"))
    write("connection", "recv_bytes_announces_2GiB", mode(0) + struct.pack("!i", -1) + struct.pack("!Q", 2**31) + b"only ten b")
    write("connection", "recv_bytes_announces_short_max", mode(0) + struct.pack("!i", 0x7fffffff) + b"short")
    write("connection", "recv_bytes_truncated_header", mode(0) + b"\x00\x00")
    write("connection", "recv_bytes_maxlength", mode(1) + frame(b"x" * 100) + frame(b"y" * 300))
    write("connection", "recv_bytes_into", mode(2) + frame(b"fits") + frame(b"z" * 100))
    write("connection", "recv_pickle", mode(3) + frame(pickle.dumps([1, "a", {"b": 2.5}], 4)) + frame(b"not a pickle"))
    # deliver_challenge: the peer's answers (the challenge itself is random,
    # so these are wrong, in each of the forms a peer may give).
    write("connection", "deliver_md5_answer", mode(4) + frame(hmac.new(AUTHKEY, b"x" * 20, "md5").digest()))
    write("connection", "deliver_sha256_answer", mode(5) + frame(b"{sha256}" + hmac.new(AUTHKEY, b"x" * 40, "sha256").digest()))
    write("connection", "deliver_long_answer", mode(5) + frame(b"{sha256}" + b"a" * 300))
    # answer_challenge: a 3.11 challenge then #WELCOME#; a 3.12 one; a #FAILURE#.
    message = b"#CHALLENGE#" + bytes(range(20))
    write("connection", "answer_311_welcome", mode(6) + frame(message) + frame(b"#WELCOME#"))
    message = b"#CHALLENGE#" + b"{sha256}" + bytes(range(40))
    write("connection", "answer_312_welcome", mode(6) + frame(message) + frame(b"#WELCOME#"))
    write("connection", "answer_failure", mode(6) + frame(b"#CHALLENGE#" + bytes(20)) + frame(b"#FAILURE#"))
    write("connection", "answer_no_challenge", mode(6) + frame(b"#WELCOME#"))
    # A Client's handshake: answer, then deliver (the peer's answer is wrong).
    write("connection", "client_handshake", mode(7) + frame(b"#CHALLENGE#" + bytes(range(20))) +
          frame(b"#WELCOME#") + frame(hmac.new(AUTHKEY, b"y" * 20, "md5").digest()))


def managers():
    def call(methodname, args=(), kwds=None, ident=IDENT):
        return frame(pickle.dumps((ident, methodname, args, kwds or {}), 4))
    session = b"".join([
        call("__setitem__", ("a", 1)), call("__setitem__", ("b", [1, 2, {"c": 3}])),
        call("__getitem__", ("a",)), call("get", ("z", "default")), call("__len__"),
        call("__contains__", ("b",)), call("keys"), call("values"), call("items"),
        call("copy"), call("update", ({"d": 4.5},)), call("setdefault", ("e", None)),
        call("pop", ("a",)), call("popitem"), call("__delitem__", ("b",)),
        call("#GETVALUE"), call("__str__"), call("__repr__"), call("clear"),
    ])
    write("managers", "dict_session", session)
    write("managers", "dict_iter", call("__setitem__", (1, 2)) + call("__iter__"))
    write("managers", "errors", call("__getitem__", ("missing",)) + call("no_such_method") +
          call("__len__", ident="ffffffffffff") + call("__setitem__", ("unhashable", [1]), {"k": 1}))
    write("managers", "not_a_request", frame(pickle.dumps([1, 2], 4)) + frame(b"not a pickle") +
          frame(pickle.dumps((IDENT, 5, (), {}), 4)) + call("__len__"))
    write("managers", "control_request", frame(pickle.dumps((None, "number_of_objects", (), {}), 4)))
    write("managers", "broken_stream", call("__len__") + b"\x00\x00\x01\x00partial")
    # A request carrying a proxy, whose unpickling connects to the proxy's
    # manager (RebuildProxy): at a path with no socket, at a TCP address.
    from multiprocessing.managers import DictProxy, RebuildProxy, Token

    class Proxy:
        def __init__(self, address):
            self.address = address

        def __reduce__(self):
            return RebuildProxy, (DictProxy, Token("dict", self.address, "abc"), "pickle", {})
    write("managers", "proxy_unreachable_unix",
          call("__setitem__", ("k", Proxy("/nonexistent/mp-no-manager"))) + call("__len__"))
    write("managers", "proxy_unreachable_tcp",
          call("__setitem__", ("k", Proxy(("10.255.255.1", 5000)))) + call("__len__"))


def resource_tracker():
    lines = {
        "register_unregister": b"REGISTER:/psm_0123abcd:shared_memory\nREGISTER:/mp-abc123:semaphore\n"
                               b"UNREGISTER:/psm_0123abcd:shared_memory\nPROBE:0:noop\n",
        "bad_lines": b"REGISTER:x\nREGISTER:a:b:c\nFOO:/x:noop\nREGISTER:/x:no_such_type\n"
                     b"REGISTER:/n\x00ul:noop\nREGISTER:/\xc3\xa9:noop\n  PROBE:0:noop \r\n",
        "overlong_line": b"REGISTER:/" + b"n" * 600 + b":shared_memory\nPROBE:0:noop\n",
        "split_line": b"\x03REGISTER:/psm_split:sha" + b"red_memory\nUNREG",
        "many_names": b"".join(b"REGISTER:/n%d:noop\n" % i for i in range(100)),
    }
    for name, data in lines.items():
        write("resource_tracker", name, data)


if __name__ == "__main__":
    if sys.version_info[:2] != (3, 11):
        print("make_corpus.py: run it with python3.11 (the pickles are 3.11's)", file=sys.stderr)
    pickles()
    connection()
    managers()
    resource_tracker()
