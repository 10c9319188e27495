# tests/interop/handshake312.py — CPython 3.12's connection handshake, rendered
# for a 3.11 interpreter (gh-61460, commit 3ed57e4; reference §3.3).
#
# The machine's python3 is 3.11, whose deliver_challenge/answer_challenge speak
# only the HMAC-MD5 form.  install() puts these 3.12 functions in their place in
# multiprocessing.connection, so that its Listener and Client speak 3.12.
import hmac
import os

from multiprocessing import connection
from multiprocessing.context import AuthenticationError

MESSAGE_LENGTH = 40  # MUST be > 20
_CHALLENGE = b'#CHALLENGE#'
_WELCOME = b'#WELCOME#'
_FAILURE = b'#FAILURE#'
_ALLOWED_DIGESTS = frozenset({b'md5', b'sha256', b'sha384', b'sha3_256', b'sha3_384'})
_MAX_DIGEST_LEN = max(len(_) for _ in _ALLOWED_DIGESTS)
_MD5ONLY_MESSAGE_LENGTH = 20
_MD5_DIGEST_LEN = 16
_LEGACY_LENGTHS = (_MD5ONLY_MESSAGE_LENGTH, _MD5_DIGEST_LEN)

# What the last handshake saw, for the test to check which form was spoken.
last = {}


def _get_digest_name_and_payload(message):
    if len(message) in _LEGACY_LENGTHS:
        return '', message
    if (message.startswith(b'{') and
            (curly := message.find(b'}', 1, _MAX_DIGEST_LEN + 2)) > 0):
        digest = message[1:curly]
        if digest in _ALLOWED_DIGESTS:
            payload = message[curly + 1:]
            return digest.decode('ascii'), payload
    raise AuthenticationError(
        'unsupported message length, missing digest prefix, '
        f'or unsupported digest: {message=}')


def _create_response(authkey, message):
    digest_name = _get_digest_name_and_payload(message)[0]
    if not digest_name:
        # Legacy server without a {digest} prefix on message.
        try:
            return hmac.new(authkey, message, 'md5').digest()
        except ValueError:
            digest_name = 'sha256'
    response = hmac.new(authkey, message, digest_name).digest()
    return b'{%s}%s' % (digest_name.encode('ascii'), response)


def _verify_challenge(authkey, message, response):
    response_digest, response_mac = _get_digest_name_and_payload(response)
    response_digest = response_digest or 'md5'
    try:
        expected = hmac.new(authkey, message, response_digest).digest()
    except ValueError:
        raise AuthenticationError(f'{response_digest=} unsupported')
    if len(expected) != len(response_mac):
        raise AuthenticationError(
            f'expected {response_digest!r} of length {len(expected)} '
            f'got {len(response_mac)}')
    if not hmac.compare_digest(expected, response_mac):
        raise AuthenticationError('digest received was wrong')


def deliver_challenge(connection, authkey, digest_name='sha256'):
    if not isinstance(authkey, bytes):
        raise ValueError(
            "Authkey must be bytes, not {0!s}".format(type(authkey)))
    message = os.urandom(MESSAGE_LENGTH)
    message = b'{%s}%s' % (digest_name.encode('ascii'), message)
    connection.send_bytes(_CHALLENGE + message)
    response = connection.recv_bytes(256)        # reject large message
    last['response_length'] = len(response)
    try:
        _verify_challenge(authkey, message, response)
    except AuthenticationError:
        connection.send_bytes(_FAILURE)
        raise
    else:
        connection.send_bytes(_WELCOME)


def answer_challenge(connection, authkey):
    if not isinstance(authkey, bytes):
        raise ValueError(
            "Authkey must be bytes, not {0!s}".format(type(authkey)))
    message = connection.recv_bytes(256)         # reject large message
    last['challenge_length'] = len(message)
    if not message.startswith(_CHALLENGE):
        raise AuthenticationError(
            f'Protocol error, expected challenge: {message=}')
    message = message[len(_CHALLENGE):]
    if len(message) < _MD5ONLY_MESSAGE_LENGTH:
        raise AuthenticationError(f'challenge too short: {len(message)} bytes')
    digest = _create_response(authkey, message)
    connection.send_bytes(digest)
    response = connection.recv_bytes(256)        # reject large message
    if response != _WELCOME:
        raise AuthenticationError('digest sent was rejected')


def install():
    """Make multiprocessing.connection's Listener and Client speak 3.12."""
    connection.deliver_challenge = deliver_challenge
    connection.answer_challenge = answer_challenge
