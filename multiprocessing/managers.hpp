// multiprocessing/managers.hpp
// Mirrors CPython 3.11 Lib/multiprocessing/managers.py: a manager is a server
// process that owns objects and serves their methods to clients over
// connection's Listener/Client; a proxy is the client's handle on one of them.
//
//   BaseManager::start()  ->  a child runs _run_server(): Server(registry, ...),
//                             sends its address back over a pipe, serve_forever()
//   manager.proxy("dict") ->  Server::create (a one-shot control connection),
//                             then a DictProxy that increfs the new object
//   proxy.get("a")        ->  BaseProxy::_callmethod: (id, 'get', ('a',), {}) on
//                             this thread's connection; Server::serve_client
//                             answers ('#RETURN', value)
//
// The wire is CPython's (reference §3.4, §3.5): the request 4-tuple, the reply
// 2-tuples '#RETURN' / '#ERROR' / '#TRACEBACK' / '#PROXY' / '#UNSERIALIZABLE',
// and the pickles of a Token and of a proxy (RebuildProxy), so a Python client
// can use a C++ manager and a C++ client a Python one.
//
// The objects a server holds.  Python's server holds any Python object and
// calls its methods by name.  Here the server holds a Referent: a C++ object
// that answers call(methodname, args, kwds) for the names it has, and tells its
// public methods (Python: public_methods(obj)).  The built-in ones are the
// SyncManager's: a dict, a list, a Value, a Namespace, a Lock, an RLock, an
// Event, a Condition, a Barrier, an Array, a Pool and what its calls return
// (see the referents:: namespace);
// MethodsReferent gives any C++ object
// named methods.  A typeid's callable makes a Referent from the call's args.
//
// How typeids reach a server started with spawn or forkserver.  Python pickles
// the registry (its callables by module and name) into the server process.
// Here each manager class has a Registry, made on first use and named after
// the class ("SyncManager", "MyManager").  A registration made while the
// program's statics are initialized (before main, the same in every process
// started from this program) is there in a spawned server too; the server
// process is sent only the class's name and the typeids the parent knows, and
// refuses to start (ValueError) if one of them is missing there.  Under fork the
// server is a copy of the parent, so registrations made at any time work.
//
// Also here, as in managers.py: the SyncManager's Pool typeid (PoolProxy: a
// pool.Pool in the server process, fed functions by name), MakeProxyType,
// and SharedMemoryManager, whose server (SharedMemoryServer, a
// ServerExtension of its class's Registry) unlinks at shutdown every shared
// memory block its clients made through it.
#pragma once

#include <sys/types.h>

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "multiprocessing/connection.hpp"
#include "multiprocessing/exceptions.hpp"
#include "multiprocessing/process.hpp"
#include "multiprocessing/reduction.hpp"
#include "multiprocessing/shared_memory.hpp"
#include "multiprocessing/util.hpp"

namespace multiprocessing {
class BaseContext;
}

namespace multiprocessing::managers {

/// Python's keyword arguments of a call, `**kwds`: str keys, in order.
using Kwds = Object::Dict;
using connection::Address;

// ------------------------------------------------------------------ exceptions

/// Python: managers.RemoteError: a failure inside the manager process that is
/// not an exception of the method called ('\#TRACEBACK', '\#UNSERIALIZABLE').
/// what() is Python's str(): '\n' + '-'*75 + '\n' + traceback + '-'*75.
class RemoteError : public Exception {
 public:
  explicit RemoteError(const std::string& traceback);
  const char* python_name() const noexcept override { return "RemoteError"; }
  /// The traceback text the server sent (Python: args[0]).
  const std::string& traceback() const noexcept { return traceback_; }

 private:
  std::string traceback_;
};

// ------------------------------------------------------------------ Token

/// Python: managers.Token: what names a shared object: its typeid, the
/// manager's address and the object's id ('%x' of its address in the server).
/// Pickles as CPython's: `Token.__new__(Token)` then BUILD (typeid, address, id).
struct Token {
  std::string typeid_;  ///< Python: typeid ('typeid' is a C++ keyword)
  Address address;      ///< Python: address
  std::string id;       ///< Python: id
  /// Python: __repr__: "Token(typeid='dict', address='/tmp/...', id='7f...')".
  std::string repr() const;
  friend bool operator==(const Token&, const Token&) = default;
};

/// An address as Python pickles it: a str, or a (host, port) tuple.
Object address_to_object(const Address& address);
/// \throws TypeError for anything else.
Address address_from_object(const Object& obj);

// ------------------------------------------------------------------ the protocol

/// Python: dispatch(c, id, methodname, args=(), kwds={}): send one request,
/// return the '\#RETURN' value, else throw what convert_to_error() makes.
/// `id` None: a request to the Server itself ('create', 'incref'...).
Object dispatch(connection::Connection& c, const Object& id, const std::string& methodname,
                const Args& args = {}, const Kwds& kwds = {});

/// Python: convert_to_error(kind, result), thrown: '\#ERROR' -> the exception
/// itself (its C++ twin, see reduction::_raise_exception); '\#TRACEBACK' ->
/// RemoteError(result); '\#UNSERIALIZABLE' -> RemoteError("Unserializable
/// message: " + result + "\n"); another kind -> ValueError("Unrecognized
/// message type 'kind'").  \throws TypeError when a '\#TRACEBACK' result is not a str.
[[noreturn]] void raise_converted_error(const std::string& kind, const Object& result);

/// Python: the format_exc() text a server sends in '\#TRACEBACK': a C++ server
/// keeps no stack, so "Traceback (most recent call last):\n  File \"<manager
/// server>\", in <where>\n<Type>: <message>\n".
std::string format_exc(const std::exception& e, const std::string& where);

// ------------------------------------------------------------------ server-side objects

/// An object held by a manager server: what Python's `id_to_obj[ident][0]` is.
/// Subclass it for a shared type of your own (or use MethodsReferent).
class Referent {
 public:
  virtual ~Referent() = default;
  /// Call the method `methodname` (Python: getattr(obj, methodname)(*args, **kwds)).
  /// \throws AttributeError when the object has no such method; whatever the
  ///   method throws (it reaches the caller as '\#ERROR', type and message).
  virtual Object call(const std::string& methodname, const Args& args, const Kwds& kwds) = 0;
  /// Python: public_methods(obj): the names of the methods without a leading
  /// '_', the default `exposed` of a typeid registered without one.
  virtual std::vector<std::string> public_methods() const = 0;
  /// Python: repr(obj) (the fallback of '__repr__').
  virtual std::string repr() const = 0;
  /// Python: str(obj) (the fallback of '__str__').
  virtual std::string str() const { return repr(); }
  /// Python: the fallback of '\#GETVALUE': the object itself, pickled (a copy).
  /// \throws PicklingError when the object has no value form (a lock).
  virtual Object getvalue() const;
  /// Python: type(obj).__name__ in error texts ("dict").
  virtual std::string type_name() const = 0;
};

/// A method of a MethodsReferent.
using Method = std::function<Object(const Args&, const Kwds&)>;

/// A Referent made of named methods: a C++ object exposed by name, as Python
/// exposes an instance's methods.  `def("f", ...)` adds one.
class MethodsReferent : public Referent {
 public:
  explicit MethodsReferent(std::string type_name) : type_name_(std::move(type_name)) {}
  /// Add (or replace) the method `name`.  Returns *this for chaining.
  MethodsReferent& def(const std::string& name, Method method);
  Object call(const std::string& methodname, const Args& args, const Kwds& kwds) override;
  std::vector<std::string> public_methods() const override;
  std::string repr() const override;
  std::string type_name() const override { return type_name_; }

 protected:
  /// Whether def() added a method of that name.
  bool has_method(const std::string& name) const { return methods_.count(name) != 0; }

 private:
  std::string type_name_;
  std::map<std::string, Method> methods_;
};

/// An Object that carries a Referent: what a method returns when its result
/// is itself a shared object (a method listed in method_to_typeid, such as a
/// dict's __iter__ giving an Iterator).  Never pickled: the server turns it
/// into a '\#PROXY' reply.
Object wrap_referent(std::shared_ptr<Referent> referent);
/// The Referent an Object carries, or nullptr.
std::shared_ptr<Referent> unwrap_referent(const Object& obj);

/// Python: the `callable` of a typeid: makes the shared object from the
/// arguments of `manager.TYPEID(*args, **kwds)`.
using Callable = std::function<std::shared_ptr<Referent>(const Args&, const Kwds&)>;

// ------------------------------------------------------------------ Registry

/// Python: one entry of BaseManager._registry:
/// (callable, exposed, method_to_typeid, proxytype).
struct TypeidEntry {
  Callable callable;                                ///< empty: the Iterator kind (Python: None)
  std::optional<std::vector<std::string>> exposed;  ///< nullopt: public_methods(obj)
  std::map<std::string, std::string> method_to_typeid;
  std::string proxytype = "AutoProxy";              ///< the Python class name of the proxy
  bool create_method = true;
};

class ServerExtension;
/// Python: a manager class's `_Server` when it is a subclass of Server
/// (SharedMemoryManager's SharedMemoryServer): makes what that subclass adds,
/// for the server listening at `address`.
using ServerExtensionFactory = std::function<std::shared_ptr<ServerExtension>(const Address& address)>;

/// Python: a manager class's `_registry` (BaseManager.register writes it).
/// Named after the class; a subclass's starts as a copy of its base's.
class Registry {
 public:
  /// Register a registry for the class `class_name` (findable with find()).
  /// \throws ValueError if another registry has that name.
  explicit Registry(std::string class_name, const Registry* base = nullptr);
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;
  ~Registry();

  /// Python: BaseManager.register(typeid, callable=None, proxytype=None,
  /// exposed=None, method_to_typeid=None, create_method=True) (`register` is
  /// a C++ keyword).  proxytype default "AutoProxy"; exposed and
  /// method_to_typeid default to the proxy type's own (proxy_exposed(),
  /// proxy_method_to_typeid()).  Returns true, so that it can initialize a
  /// static: a registration made that way reaches spawned servers.
  bool register_typeid(const std::string& typeid_, Callable callable = {},
                       std::optional<std::string> proxytype = std::nullopt,
                       std::optional<std::vector<std::string>> exposed = std::nullopt,
                       std::optional<std::map<std::string, std::string>> method_to_typeid = std::nullopt,
                       bool create_method = true);
  /// The entry for `typeid_`.  \throws KeyError naming it.
  TypeidEntry get(const std::string& typeid_) const;
  bool contains(const std::string& typeid_) const;
  /// The typeids, sorted.
  std::vector<std::string> typeids() const;
  const std::string& class_name() const noexcept { return class_name_; }
  /// Python: setting the class's `_Server` to a subclass of Server: every
  /// server of this class (started, spawned, or get_server()'s) gets what
  /// `factory` makes.  Set it while statics are initialized, as typeids are
  /// registered.  A subclass's registry starts with its base's.
  void set_server_extension(ServerExtensionFactory factory);
  /// The factory set_server_extension() gave, or an empty one (a plain Server).
  ServerExtensionFactory server_extension() const;
  /// The registry of the class `class_name`, or nullptr.
  static Registry* find(const std::string& class_name);

 private:
  std::string class_name_;
  mutable std::mutex mutex_;
  std::map<std::string, TypeidEntry> entries_;
  ServerExtensionFactory server_extension_;
};

/// Python: `ProxyType._exposed_` / `_method_to_typeid_` of the port's proxy
/// classes ("DictProxy", "ListProxy", "ValueProxy", "NamespaceProxy",
/// "AcquirerProxy", "EventProxy", "ConditionProxy", "BarrierProxy",
/// "ArrayProxy", "IteratorProxy", "PoolProxy", and those MakeProxyType()
/// made); nullopt / empty for "AutoProxy" and unknown names.
std::optional<std::vector<std::string>> proxy_exposed(const std::string& proxytype);
std::map<std::string, std::string> proxy_method_to_typeid(const std::string& proxytype);

// ------------------------------------------------------------------ Server

/// Python: managers.Server: the object server of a manager process.  Accepts
/// connections on its Listener (a thread), serves each in a thread of its own.
/// Copies share one server.
class Server {
 public:
  /// Python: public: the requests a control connection may make.
  static const std::vector<std::string> public_;

  /// Python: Server(registry, address, authkey, serializer): binds the listener
  /// (backlog 16; no authkey on it: each connection's thread authenticates).
  /// \throws ValueError for a serializer other than 'pickle'; OSError from bind.
  Server(const Registry& registry, std::optional<Address> address, Bytes authkey,
         const std::string& serializer = "pickle");
  /// Python: address: where the server listens.
  const Address& address() const;
  /// Python: serve_forever(): accept in a thread until a 'shutdown' request,
  /// then end the process as Python's sys.exit(0) does: throws SystemExit(0).
  [[noreturn]] void serve_forever();

  // ---- the requests of public_ (Python: the methods of the same names); `c` is
  // the connection the request came on.
  /// Python: create(c, typeid, /, *args, **kwds) -> (ident, exposed).
  Object create(connection::Connection& c, const std::string& typeid_, const Args& args,
                const Kwds& kwds);
  /// Python: incref(c, ident).  \throws KeyError for an unknown ident.
  void incref(connection::Connection& c, const std::string& ident);
  /// Python: decref(c, ident).  \throws AssertionError at refcount 0.
  void decref(connection::Connection& c, const std::string& ident);
  /// Python: debug_info(c): one line per object held.
  std::string debug_info(connection::Connection& c);
  /// Python: number_of_objects(c): len(id_to_refcount).
  std::int64_t number_of_objects(connection::Connection& c);
  /// Python: shutdown(c): answer, then stop serve_forever().
  void shutdown(connection::Connection& c);
  /// Python: get_methods(c, token): the exposed names of token.id.
  Object get_methods(connection::Connection& c, const Object& token);
  /// Python: accept_connection(c, name): answer, then serve_client(c).
  void accept_connection(connection::Connection& c, const std::string& name);
  /// Python: dummy(c).
  void dummy(connection::Connection&) {}
  /// Python: serve_client(conn): the method-call loop of one connection, until EOF.
  void serve_client(connection::Connection& conn);
  /// Python: handle_request(c): authenticate, one control request, reply, close.
  void handle_request(connection::Connection c);

  struct State;  ///< id_to_obj, id_to_refcount, ... (managers.cpp)

  /// Python: id_to_obj[ident], the triple (obj, exposed, method_to_typeid).
  /// The names are shared between the copies, not copied.
  struct Held {
    std::shared_ptr<Referent> obj;                                             ///< the object
    std::shared_ptr<const std::vector<std::string>> exposed;                  ///< its exposed methods
    std::shared_ptr<const std::map<std::string, std::string>> method_to_typeid;  ///< results made shared
  };

  /// Python: the body of serve_client's loop, from one request (id,
  /// methodname, args, kwds) to the reply it sends: the object's method
  /// called, '\#RETURN' its result, '\#PROXY' a result that its typeid
  /// makes shared, '\#ERROR' what the method raised, '\#TRACEBACK' a request
  /// that names no object or no exposed method (but __str__, __repr__ and
  /// '\#GETVALUE' work unexposed: Python's fallback_mapping).  The course
  /// assignment "serve_client" is this function (assignments/serve_client/).
  Object _dispatch(connection::Connection& conn, const Object& request);
  /// Python: self.id_to_obj[ident], else self.id_to_local_proxy_obj[ident].
  /// \throws KeyError naming ident.
  Held _lookup(const std::string& ident);
  /// Python: serve_client's '\#PROXY' reply: `result` made a shared object of
  /// `typeid_` (create), answered as (exposed, token).
  Object _proxy_reply(connection::Connection& conn, const std::string& typeid_, const Object& result);
  /// Python: what the '\#ERROR' reply pickles for an exception a method raised.
  static Object _reduce_error(const std::exception& e);

 private:
  std::shared_ptr<State> state_;
};

/// Python: what a subclass of Server adds to it (SharedMemoryServer does):
/// requests beyond Server.public, answered on a control connection, and work
/// done when a shutdown request arrives, before the server stops.
class ServerExtension {
 public:
  virtual ~ServerExtension() = default;
  /// The requests added to Server.public.
  virtual std::vector<std::string> public_() const = 0;
  /// Answer the request `funcname` (one of public_()); its result is the
  /// '\#RETURN' value.  \throws what the request throws ('\#TRACEBACK').
  virtual Object request(connection::Connection& c, const std::string& funcname, const Args& args) = 0;
  /// Python: the subclass's shutdown(c), which ends with Server.shutdown(c).
  virtual void shutdown(connection::Connection& c) = 0;
};

// ------------------------------------------------------------------ BaseProxy

class BaseManager;

/// Python: managers.BaseProxy: a handle on an object of a manager.  Copies
/// share one reference: the server's refcount goes up once when a proxy is
/// made (incref) and down once when its last copy dies (a Finalize, exit
/// priority 10, like Python's `_close`).  Calls go over a connection opened
/// per thread and per manager address on first use (Python: `_tls`).
/// A proxy crosses to a child as CPython pickles it, RebuildProxy(ProxyType,
/// token, 'pickle', kwds); the child's proxy holds a reference of its own.
class BaseProxy {
 public:
  /// An unbound proxy (no object): every call throws ValueError.
  BaseProxy() = default;
  /// Python: BaseProxy(token, serializer, manager=None, authkey=None,
  /// exposed=None, incref=True, manager_owned=False).  `proxytype` is the
  /// Python class name it pickles under ("DictProxy", "AutoProxy"...);
  /// `registry` tells the proxy type of a typeid that a call returns as a
  /// proxy (Python: manager._registry); without one it is an AutoProxy.
  /// \throws OSError, AuthenticationError from the incref's connection.
  BaseProxy(Token token, std::string proxytype, std::optional<Bytes> authkey = std::nullopt,
            std::optional<std::vector<std::string>> exposed = std::nullopt, bool incref = true,
            const Registry* registry = nullptr);

  /// Python: _callmethod(methodname, args=(), kwds={}): call a method of the
  /// referent.  A '\#PROXY' reply becomes a proxy, returned as its Object form
  /// (read it with .as<DictProxy>()...).
  /// \throws the referent's exception ('\#ERROR'); RemoteError; EOFError or
  ///   OSError (ECONNRESET...) when the server is gone.
  Object _callmethod(const std::string& methodname, const Args& args = {}, const Kwds& kwds = {}) const;
  /// The same, with `args` moved into the request instead of copied (a
  /// braced list of arguments, as the typed proxies pass, takes this one).
  Object _callmethod(const std::string& methodname, Args&& args, const Kwds& kwds = {}) const;
  /// Python: _getvalue(): a copy of the referent.
  Object _getvalue() const { return _callmethod("#GETVALUE"); }
  /// Python: __str__ -> the referent's str() (_callmethod('__str__')).
  std::string str() const;
  /// Python: __repr__: "<DictProxy object, typeid 'dict' at 0x...>".
  std::string repr() const;
  /// Python: _token.
  const Token& _token() const;
  /// Python: _exposed_ (AutoProxy) or the exposed names the server gave.
  const std::vector<std::string>& _exposed() const;
  /// The proxy class name ("DictProxy").
  const std::string& proxytype() const;
  /// Python: __reduce__: RebuildProxy(ProxyType, token, 'pickle', kwds).
  Object _reduce() const;
  /// Python: RebuildProxy(func, token, serializer, kwds): the proxy an Object
  /// stands for: the same proxy when the Object came from this process; else
  /// a new one holding a reference of its own (incref), also in a spawned child.
  /// Its authkey: kwds['authkey'] (sent while spawning), else the key of the
  /// proxy whose call brought it back when both name the same manager, else
  /// current_process().authkey (CPython has only the first and the last).
  /// \throws TypeError when `obj` is not a pickled proxy; what incref throws.
  static BaseProxy _rebuild(const Object& obj);
  explicit operator bool() const noexcept { return static_cast<bool>(state_); }

  struct State;  ///< token, authkey, idset entry, the decref Finalize (managers.cpp)

 protected:
  friend class BaseManager;
  explicit BaseProxy(std::shared_ptr<State> state) : state_(std::move(state)) {}
  std::shared_ptr<State> state_;
};

/// Python: AutoProxy(token, serializer, ...): a proxy whose methods are the
/// referent's exposed ones, called by name.  Python builds a class per
/// typeid (MakeProxyType); C++ cannot make classes at run time, so an
/// AutoProxy is a BaseProxy with call(), which checks the name.
class AutoProxy : public BaseProxy {
 public:
  using BaseProxy::BaseProxy;
  AutoProxy(BaseProxy p) : BaseProxy(std::move(p)) {}  // NOLINT: a proxy is an AutoProxy
  /// Python: `proxy.name(*args, **kwds)` of a MakeProxyType method.
  /// \throws AttributeError "'AutoProxy[Foo]' object has no attribute 'x'"
  ///   (a MakeProxyType type: "'FooProxy' object ...") when `name` is not
  ///   exposed; what _callmethod throws.
  Object call(const std::string& name, const Args& args = {}, const Kwds& kwds = {}) const;
};

/// Python: iter(proxy) of a proxy without __iter__ (a ListProxy, an
/// ArrayProxy): the old sequence protocol, __getitem__(0), __getitem__(1)...
/// until IndexError, each call made when next() asks for it, so a change to
/// the shared object after iter() shows (Python's test_list_iter).
class SequenceIterator {
 public:
  explicit SequenceIterator(BaseProxy proxy) : proxy_(std::move(proxy)) {}
  /// Python: next(it): the next item; nullopt once __getitem__ raised
  /// IndexError (StopIteration), and from then on.
  std::optional<Object> next();
  /// Python: list(it): the items that remain.
  Object::List rest();

 private:
  BaseProxy proxy_;
  std::int64_t index_ = 0;
  bool exhausted_ = false;
};

/// Python: managers.IteratorProxy (the Iterator typeid: a dict's __iter__, a
/// Pool's imap and imap_unordered): __next__ until StopIteration.
class IteratorProxy : public BaseProxy {
 public:
  using BaseProxy::BaseProxy;
  explicit IteratorProxy(BaseProxy p) : BaseProxy(std::move(p)) {}
  /// Python: next(proxy): the next item, or nullopt when the server's
  /// iterator raised StopIteration; its other exceptions as they are.
  std::optional<Object> next() const;
  /// Python: list(proxy): the items that remain.
  Object::List rest() const;
  void close() const;  ///< Python: close()
};

/// Python: the AutoProxy of the AsyncResult typeid (a Pool's apply_async,
/// map_async, starmap_async made in the manager): get, ready, successful, wait.
/// It pickles as an AutoProxy, as Python's.
class AsyncResultProxy : public AutoProxy {
 public:
  using AutoProxy::AutoProxy;
  explicit AsyncResultProxy(BaseProxy p) : AutoProxy(std::move(p)) {}
  /// Python: get(timeout=None): the result; the task's exception re-raised.
  /// \throws TimeoutError when it has not arrived within `timeout` seconds.
  Object get(std::optional<double> timeout = std::nullopt) const;
  bool ready() const;       ///< Python: ready()
  /// Python: successful().  \throws ValueError before ready().
  bool successful() const;
  void wait(std::optional<double> timeout = std::nullopt) const;  ///< Python: wait(timeout=None)
};

/// Python: managers.PoolProxy (the Pool typeid): a pool.Pool living in the
/// manager's process, its workers that process's children.  A function
/// crosses by name, as Python pickles one: register it with
/// MP_REGISTER_TARGET (a lambda is refused with PicklingError).  Callbacks
/// cannot cross to the manager and are not offered; call get() instead.
/// Python's `with pool_proxy:` ends with terminate().
class PoolProxy : public BaseProxy {
 public:
  using BaseProxy::BaseProxy;
  explicit PoolProxy(BaseProxy p) : BaseProxy(std::move(p)) {}
  /// Python: apply(func, args=()): func(*args) in a worker of the manager's pool.
  Object apply(const Target& func, const Args& args = {}) const;
  /// Python: apply_async(func, args=()).
  AsyncResultProxy apply_async(const Target& func, const Args& args = {}) const;
  /// Python: map(func, iterable, chunksize=None).
  Object::List map(const Target& func, const Object::List& iterable,
                   std::optional<int> chunksize = std::nullopt) const;
  /// Python: map_async(func, iterable, chunksize=None): get() gives the list.
  AsyncResultProxy map_async(const Target& func, const Object::List& iterable,
                             std::optional<int> chunksize = std::nullopt) const;
  /// Python: starmap(func, iterable, chunksize=None): func(*args) for each args.
  Object::List starmap(const Target& func, const Object::List& iterable,
                       std::optional<int> chunksize = std::nullopt) const;
  /// Python: starmap_async(func, iterable, chunksize=None).
  AsyncResultProxy starmap_async(const Target& func, const Object::List& iterable,
                                 std::optional<int> chunksize = std::nullopt) const;
  /// Python: imap(func, iterable, chunksize=1): the results in order, one
  /// __next__ at a time.
  IteratorProxy imap(const Target& func, const Object::List& iterable, int chunksize = 1) const;
  /// Python: imap_unordered(func, iterable, chunksize=1): as they are ready.
  IteratorProxy imap_unordered(const Target& func, const Object::List& iterable, int chunksize = 1) const;
  void close() const;      ///< Python: close()
  /// Python: join().  \throws ValueError "Pool is still running" before close()/terminate().
  void join() const;
  void terminate() const;  ///< Python: terminate() (also what leaving `with` does)
};

/// Python: MakeProxyType(name, exposed): a proxy type named `name` whose
/// methods are `exposed`.  C++ cannot make a class at run time, so this
/// records the type: proxy_exposed(name) gives `exposed` from then on (the
/// default `exposed` of a typeid registered with proxytype `name`), a proxy of
/// that type pickles as `multiprocessing.managers.<name>`, as Python's does,
/// and unpickles here, and its methods are called through AutoProxy::call(),
/// which refuses any other name.  Returns `name`, to pass as register_typeid's
/// proxytype.  Call it while statics are initialized, so that spawned
/// children know the type too.  The same call again is harmless.
/// \throws ValueError when `name` is a built-in proxy type, or was made
///   with other exposed names (Python would make a second class).
std::string MakeProxyType(const std::string& name, const std::vector<std::string>& exposed);

/// Python: managers.DictProxy (the dict typeid).  Python's operators are methods
/// here: `d[k]` is getitem(k), `d[k] = v` setitem(k, v), `k in d` contains(k).
class DictProxy : public BaseProxy {
 public:
  using BaseProxy::BaseProxy;
  explicit DictProxy(BaseProxy p) : BaseProxy(std::move(p)) {}
  Object getitem(const Object& key) const;                  ///< Python: __getitem__
  void setitem(const Object& key, const Object& value) const;  ///< Python: __setitem__
  void delitem(const Object& key) const;                    ///< Python: __delitem__
  std::int64_t len() const;                                 ///< Python: __len__
  bool contains(const Object& key) const;                   ///< Python: __contains__
  Object get(const Object& key, const Object& default_ = Object()) const;
  Object::List keys() const;    ///< Python: keys() (a list, as dict views pickle)
  Object::List values() const;  ///< Python: values()
  Object::List items() const;   ///< Python: items() (a list of 2-tuples)
  void update(const Object& other, const Kwds& kwds = {}) const;
  Object pop(const Object& key) const;
  Object pop(const Object& key, const Object& default_) const;
  Object popitem() const;
  Object setdefault(const Object& key, const Object& default_ = Object()) const;
  void clear() const;
  Object::Dict copy() const;  ///< Python: copy(): a plain dict
};

/// Python: managers.ListProxy (the list typeid).  `l[i]` is getitem(i), `l += x`
/// iadd(x) (extend), `l *= n` imul(n), `l + x` add(x) (a plain list).
class ListProxy : public BaseProxy {
 public:
  using BaseProxy::BaseProxy;
  explicit ListProxy(BaseProxy p) : BaseProxy(std::move(p)) {}
  Object getitem(std::int64_t index) const;                  ///< Python: __getitem__
  void setitem(std::int64_t index, const Object& value) const;  ///< Python: __setitem__
  void delitem(std::int64_t index) const;                    ///< Python: __delitem__
  std::int64_t len() const;                                  ///< Python: __len__
  bool contains(const Object& value) const;                  ///< Python: __contains__
  void append(const Object& value) const;
  void extend(const Object& values) const;
  std::int64_t index(const Object& value) const;
  std::int64_t count(const Object& value) const;
  void insert(std::int64_t index, const Object& value) const;
  void remove(const Object& value) const;
  Object pop(std::int64_t index = -1) const;
  void reverse() const;
  void sort(bool reverse = false) const;  ///< Python: sort(reverse=...) (no key: it cannot cross)
  ListProxy& iadd(const Object& values);  ///< Python: __iadd__ -> extend, returns self
  ListProxy& imul(std::int64_t n);        ///< Python: __imul__, returns self
  Object::List add(const Object& values) const;  ///< Python: __add__ (a plain list)
  Object::List mul(std::int64_t n) const;        ///< Python: __mul__ (a plain list)
  /// Python: iter(proxy): __getitem__ by index until IndexError (ListProxy
  /// exposes no __iter__), so it sees changes made after iter().
  SequenceIterator iter() const { return SequenceIterator(*this); }
};

/// Python: managers.ValueProxy (the Value typeid): get, set, the value property.
class ValueProxy : public BaseProxy {
 public:
  using BaseProxy::BaseProxy;
  explicit ValueProxy(BaseProxy p) : BaseProxy(std::move(p)) {}
  Object get() const;
  void set(const Object& value) const;
  Object value() const { return get(); }                   ///< Python: value (property)
  void set_value(const Object& value) const { set(value); }  ///< Python: value = v
};

/// Python: managers.NamespaceProxy (the Namespace typeid).  `ns.x` is
/// getattr("x"), `ns.x = v` setattr("x", v).  As in Python, a name starting
/// with '_' lives on the proxy itself, in this process only.
class NamespaceProxy : public BaseProxy {
 public:
  using BaseProxy::BaseProxy;
  explicit NamespaceProxy(BaseProxy p) : BaseProxy(std::move(p)) {}
  /// Python: __getattr__.  \throws AttributeError "'Namespace' object has no attribute 'x'".
  Object getattr(const std::string& name) const;
  void setattr(const std::string& name, const Object& value);  ///< Python: __setattr__
  void delattr(const std::string& name);                       ///< Python: __delattr__

 private:
  std::shared_ptr<Kwds> local_;  // the '_' names (Python: object.__setattr__ on the proxy)
};

/// Python: managers.AcquirerProxy (Lock, RLock typeids): acquire(blocking,
/// timeout), release; usable with std::lock_guard (lock/unlock/try_lock).
class AcquirerProxy : public BaseProxy {
 public:
  using BaseProxy::BaseProxy;
  explicit AcquirerProxy(BaseProxy p) : BaseProxy(std::move(p)) {}
  /// Python: acquire(blocking=True, timeout=None): sends (blocking,) or (blocking, timeout).
  bool acquire(bool blocking = true, std::optional<double> timeout = std::nullopt) const;
  /// \throws RuntimeError "release unlocked lock" / "cannot release un-acquired lock".
  void release() const;
  void lock() const { acquire(); }                         ///< Python: __enter__
  void unlock() const { release(); }                       ///< Python: __exit__
  bool try_lock() const { return acquire(false); }
};

/// Python: managers.EventProxy (the Event typeid).
class EventProxy : public BaseProxy {
 public:
  using BaseProxy::BaseProxy;
  explicit EventProxy(BaseProxy p) : BaseProxy(std::move(p)) {}
  bool is_set() const;
  void set() const;
  void clear() const;
  bool wait(std::optional<double> timeout = std::nullopt) const;
};

/// Python: managers.ConditionProxy (the Condition typeid): AcquirerProxy's
/// acquire and release, plus wait, notify, notify_all; wait_for runs here in
/// the client, as in Python (a predicate cannot cross).
class ConditionProxy : public AcquirerProxy {
 public:
  using AcquirerProxy::AcquirerProxy;
  explicit ConditionProxy(BaseProxy p) : AcquirerProxy(std::move(p)) {}
  /// Python: wait(timeout=None): sends (timeout,).  False when the time ran out.
  /// \throws RuntimeError "cannot wait on un-acquired lock".
  bool wait(std::optional<double> timeout = std::nullopt) const;
  /// Python: notify(n=1).  \throws RuntimeError "cannot notify on un-acquired lock".
  void notify(std::int64_t n = 1) const;
  /// Python: notify_all().
  void notify_all() const;
  /// Python: wait_for(predicate, timeout=None): wait() until predicate() is
  /// true or the time is up; the predicate's last result.  The lock must be held.
  bool wait_for(const std::function<bool()>& predicate, std::optional<double> timeout = std::nullopt) const;
};

/// Python: managers.BarrierProxy (the Barrier typeid).  The properties
/// parties, n_waiting and broken are read with '__getattribute__'.
class BarrierProxy : public BaseProxy {
 public:
  using BaseProxy::BaseProxy;
  explicit BarrierProxy(BaseProxy p) : BaseProxy(std::move(p)) {}
  /// Python: wait(timeout=None): this party's index in [0, parties).
  /// \throws BrokenBarrierError when the barrier is broken or reset meanwhile.
  std::int64_t wait(std::optional<double> timeout = std::nullopt) const;
  void abort() const;
  void reset() const;
  std::int64_t parties() const;    ///< Python: parties (property)
  std::int64_t n_waiting() const;  ///< Python: n_waiting (property)
  bool broken() const;             ///< Python: broken (property)
};

/// Python: managers.ArrayProxy = MakeProxyType('ArrayProxy', ('__len__',
/// '__getitem__', '__setitem__')): `a[i]` is getitem(i), `a[i] = v` setitem(i, v).
class ArrayProxy : public BaseProxy {
 public:
  using BaseProxy::BaseProxy;
  explicit ArrayProxy(BaseProxy p) : BaseProxy(std::move(p)) {}
  std::int64_t len() const;                                      ///< Python: __len__
  /// Python: __getitem__.  \throws IndexError "array index out of range".
  Object getitem(std::int64_t index) const;
  /// Python: __setitem__.  \throws IndexError; TypeError for a value the typecode refuses.
  void setitem(std::int64_t index, const Object& value) const;
  /// Python: list(proxy): getitem(0), getitem(1)... until IndexError.
  Object::List tolist() const;
};

// ------------------------------------------------------------------ BaseManager

/// Python: managers.BaseManager.  A manager that start() runs in a child
/// process, or that connect() reaches where another process runs it.
/// Copies share one manager.  Destroying the last copy shuts a started
/// server down, as leaving `with BaseManager() as m:` does.
class BaseManager {
 public:
  /// Python: State.INITIAL / STARTED / SHUTDOWN.
  enum class State { INITIAL = 0, STARTED = 1, SHUTDOWN = 2 };

  /// Python: BaseManager(address=None, authkey=None, serializer='pickle',
  /// ctx=None, *, shutdown_timeout=1.0), the class's registry being BaseManager's.
  /// authkey default: current_process().authkey.
  /// \throws ValueError for a serializer other than 'pickle'.
  explicit BaseManager(std::optional<Address> address = std::nullopt,
                       std::optional<Bytes> authkey = std::nullopt,
                       const std::string& serializer = "pickle", BaseContext* ctx = nullptr,
                       double shutdown_timeout = 1.0);
  virtual ~BaseManager();
  BaseManager(const BaseManager&) = default;
  BaseManager& operator=(const BaseManager&) = default;
  BaseManager(BaseManager&&) noexcept = default;
  BaseManager& operator=(BaseManager&&) noexcept = default;

  /// Python: BaseManager._registry: the class's registry (see Registry).
  static Registry& _registry();
  /// The registry of this manager's class.
  const Registry& registry() const;

  /// Python: start(initializer=None, initargs=()): run the server in a child
  /// process (named "<Class>-N") under the context's start method, and read
  /// its address back over a pipe.
  /// \throws ProcessError "Already started server" / "Manager has shut down";
  ///   EOFError when the server process died before sending its address.
  void start(Target initializer = {}, Args initargs = {});
  /// Python: connect(): use a server that runs elsewhere (Client, 'dummy').
  /// \throws OSError (ECONNREFUSED...), AuthenticationError.
  void connect();
  /// Python: get_server(): a Server for this process to serve_forever().
  /// \throws ProcessError "Already started server" / "Manager has shut down".
  Server get_server();
  /// Python: shutdown(): ask a started server to stop, join it (then terminate,
  /// then kill, each after shutdown_timeout).  Idempotent.  A server that did
  /// not end cleanly (killed) leaves its Unix socket file and its "pymp-" temp
  /// directory: shutdown() removes them after reaping it.
  void shutdown();
  /// Python: join(timeout=None): join the server process.
  void join(std::optional<double> timeout = std::nullopt);
  /// Python: address (property).
  const std::optional<Address>& address() const;
  /// Python: _state.value.
  State _state() const;

  /// Python: the `with manager:` block, as a scope object: made by enter()
  /// (`__enter__`), its destructor is `__exit__`, which calls shutdown() on
  /// the manager while the manager object itself lives on.
  class Scope {
   public:
    explicit Scope(BaseManager& manager) : manager_(&manager) {}
    ~Scope();
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    BaseManager* manager_;
  };
  /// Python: __enter__: start() a manager that is neither started nor
  /// connected (one started already is used as it is).
  ///   { auto with = manager.enter(); ... }   // Python: with manager: ...
  /// \throws ProcessError "Manager has shut down"; what start() throws.
  [[nodiscard]] Scope enter();
  /// Python: _process (nullptr unless start() ran).
  BaseProcess* _process() const;
  /// Python: _authkey.
  const Bytes& _authkey() const;

  /// Python: the method register() adds under the typeid's name,
  /// `manager.TYPEID(*args, **kwds)`: create the object on the server and
  /// return a proxy of the typeid's proxy type.
  /// \throws KeyError for an unknown typeid; AssertionError "server not yet
  ///   started"; what the callable throws, as RemoteError.
  BaseProxy proxy(const std::string& typeid_, const Args& args = {}, const Kwds& kwds = {});
  /// Python: _create(typeid, *args, **kwds) -> (Token, exposed).
  std::pair<Token, std::vector<std::string>> _create(const std::string& typeid_, const Args& args = {},
                                                     const Kwds& kwds = {});
  /// Python: _debug_info() / _number_of_objects().
  std::string _debug_info();
  std::int64_t _number_of_objects();

  /// Python: _run_server(registry, address, authkey, serializer, writer,
  /// initializer=None, initargs=()): the server process's target.  Public to
  /// be registered by name for spawn.
  static void _run_server(const Object& registry, const Object& address, const Bytes& authkey,
                          const std::string& serializer, connection::Connection& writer,
                          const Object& initializer, const Object& initargs);

  struct Shared;  ///< the state copies share (managers.cpp)

 protected:
  /// A subclass passes its class's registry (its own static _registry()).
  BaseManager(Registry& registry, std::optional<Address> address, std::optional<Bytes> authkey,
              const std::string& serializer, BaseContext* ctx, double shutdown_timeout);

 private:
  std::shared_ptr<Shared> shared_;
};

/// Python: managers.SyncManager: BaseManager with the typeids dict, list,
/// Value, Array, Namespace, Lock, RLock, Semaphore, BoundedSemaphore,
/// Condition, Event, Barrier, Queue, JoinableQueue, Pool (and Iterator and
/// AsyncResult, without a create method).
class SyncManager : public BaseManager {
 public:
  explicit SyncManager(std::optional<Address> address = std::nullopt,
                       std::optional<Bytes> authkey = std::nullopt,
                       const std::string& serializer = "pickle", BaseContext* ctx = nullptr,
                       double shutdown_timeout = 1.0);
  /// Python: SyncManager._registry.
  static Registry& _registry();

  /// Python: dict(*args, **kwds): a shared dict (from a dict or pairs, and kwds).
  DictProxy dict(const Object& init = Object::Dict{}, const Kwds& kwds = {});
  /// Python: list(sequence=()).
  ListProxy list(const Object& init = Object::List{});
  /// Python: Value(typecode, value, lock=True).
  ValueProxy Value(const std::string& typecode, const Object& value, bool lock = true);
  /// Python: Namespace(**kwds).
  NamespaceProxy Namespace(const Kwds& kwds = {});
  /// Python: Lock() / RLock() (threading's, in the server).
  AcquirerProxy Lock();
  AcquirerProxy RLock();
  /// Python: Event() (threading's, in the server).
  EventProxy Event();
  /// Python: Condition() (threading's, over an RLock of its own, in the server).
  ConditionProxy Condition();
  /// Python: Barrier(parties, timeout=None) (threading's, in the server; no
  /// action, which could not cross).  \throws RemoteError when the server
  /// refuses it (ValueError "parties must be >= 1"), as for any typeid.
  BarrierProxy Barrier(std::int64_t parties, std::optional<double> timeout = std::nullopt);
  /// Python: Array(typecode, sequence): an array.array in the server.
  /// \throws RemoteError when the server refuses it (ValueError "bad typecode
  /// ...", TypeError for an item the typecode refuses), as for any typeid.
  ArrayProxy Array(const std::string& typecode, const Object& sequence);
  /// Python: Semaphore(value=1) / BoundedSemaphore(value=1) (threading's).
  AcquirerProxy Semaphore(std::int64_t value = 1);
  AcquirerProxy BoundedSemaphore(std::int64_t value = 1);
  /// Python: Queue(maxsize=0) / JoinableQueue(maxsize=0): a queue.Queue in the
  /// server, through an AutoProxy (put, get, put_nowait, get_nowait, qsize,
  /// empty, full, task_done, join); get on an empty queue raises queues::Empty.
  AutoProxy Queue(std::int64_t maxsize = 0);
  AutoProxy JoinableQueue(std::int64_t maxsize = 0);
  /// Python: Pool(processes=None, initializer=None, initargs=(),
  /// maxtasksperchild=None): a pool.Pool in the server process.  The
  /// initializer crosses by name (MP_REGISTER_TARGET).
  /// \throws RemoteError when the server refuses it (ValueError "Number of
  ///   processes must be at least 1"...), as for any typeid.
  PoolProxy Pool(std::optional<int> processes = std::nullopt, const Target& initializer = {},
                 const Args& initargs = {}, std::optional<int> maxtasksperchild = std::nullopt);

 protected:
  SyncManager(Registry& registry, std::optional<Address> address, std::optional<Bytes> authkey,
              const std::string& serializer, BaseContext* ctx, double shutdown_timeout);
};

// ------------------------------------------------------------------ SharedMemoryManager

/// Python: managers._SharedMemoryTracker (C++ reserves the leading
/// underscore before a capital): the names of the shared memory blocks a
/// SharedMemoryServer unlinks when it shuts down.  Thread-safe.
class SharedMemoryTracker {
 public:
  explicit SharedMemoryTracker(std::string name) : name_(std::move(name)) {}
  /// Python: __del__: unlink().
  ~SharedMemoryTracker();
  SharedMemoryTracker(const SharedMemoryTracker&) = delete;
  SharedMemoryTracker& operator=(const SharedMemoryTracker&) = delete;
  /// Python: register_segment(segment_name): unlink it at shutdown.
  void register_segment(const std::string& segment_name);
  /// Python: destroy_segment(segment_name): forget it and unlink the block now.
  /// \throws ValueError when it is not tracked; FileNotFoundError when the
  ///   block is gone already (it is forgotten all the same).
  void destroy_segment(const std::string& segment_name);
  /// Python: unlink(): destroy every tracked block.  A block unlinked by
  /// someone else meanwhile is skipped (Python's shutdown would stop at it,
  /// with the rest left behind and the server still running).
  void unlink();
  /// Python: segment_names.
  std::vector<std::string> segment_names() const;
  /// Python: shared_memory_context_name: "shm_<address>_<pid>".
  const std::string& name() const noexcept { return name_; }

 private:
  std::string name_;
  mutable std::mutex mutex_;
  std::vector<std::string> segment_names_;
};

/// Python: managers.SharedMemoryServer: a Server that also answers
/// 'track_segment', 'release_segment' and 'list_segments', and unlinks every
/// block it tracks when it is asked to shut down.
class SharedMemoryServer : public ServerExtension {
 public:
  /// Python: SharedMemoryServer(registry, address, ...): its tracker is
  /// named "shm_<address>_<pid>".
  explicit SharedMemoryServer(const Address& address);
  std::vector<std::string> public_() const override;
  /// track_segment(name) -> None, release_segment(name) -> None,
  /// list_segments() -> a list of names.
  Object request(connection::Connection& c, const std::string& funcname, const Args& args) override;
  /// Python: shutdown(c): shared_memory_context.unlink().
  void shutdown(connection::Connection& c) override;
  /// Python: shared_memory_context.
  SharedMemoryTracker& shared_memory_context() noexcept { return tracker_; }

 private:
  SharedMemoryTracker tracker_;
};

/// Python: managers.SharedMemoryManager: a manager whose server
/// (SharedMemoryServer) tracks the shared memory blocks its clients create
/// through it, and unlinks them all when it shuts down, so that nothing is
/// left in /dev/shm.  The blocks themselves are made in the client: only
/// their names go to the server.  The manager starts the resource tracker
/// first, so that the server process reports to the same one as this process
/// (bpo-36867: otherwise this process's tracker would think the blocks leaked).
class SharedMemoryManager : public BaseManager {
 public:
  explicit SharedMemoryManager(std::optional<Address> address = std::nullopt,
                               std::optional<Bytes> authkey = std::nullopt,
                               const std::string& serializer = "pickle", BaseContext* ctx = nullptr,
                               double shutdown_timeout = 1.0);
  /// Python: SharedMemoryManager._registry (with SharedMemoryServer as its server).
  static Registry& _registry();
  /// Python: SharedMemory(size): a new block of `size` bytes, tracked by the server.
  /// \throws ValueError "address type of None unrecognized" before start()
  ///   or connect(); what SharedMemory's constructor throws; the block is
  ///   unlinked again if the server cannot be told.
  shared_memory::SharedMemory SharedMemory(std::int64_t size);
  /// Python: ShareableList(sequence): a new ShareableList, tracked by the server.
  /// \throws as SharedMemory().
  shared_memory::ShareableList ShareableList(const std::vector<Object>& sequence);
};

/// Python: Namespace.__repr__ of a Kwds: "Namespace(a=1, b='x')", sorted.
std::string namespace_repr(const Kwds& attrs);

}  // namespace multiprocessing::managers

namespace multiprocessing {

/// Proxies as Process args and as values inside managed containers: they
/// cross as CPython pickles them (RebuildProxy).
template <>
struct Convert<managers::BaseProxy> {
  static Object to_object(const managers::BaseProxy& p) { return p._reduce(); }
  static managers::BaseProxy from_object(const Object& o) { return managers::BaseProxy::_rebuild(o); }
};
#define MP_MANAGERS_PROXY_CONVERT(P)                                                       \
  template <>                                                                              \
  struct Convert<managers::P> {                                                            \
    static Object to_object(const managers::P& p) { return p._reduce(); }                 \
    static managers::P from_object(const Object& o) {                                      \
      return managers::P(managers::BaseProxy::_rebuild(o));                                \
    }                                                                                      \
  };
MP_MANAGERS_PROXY_CONVERT(AutoProxy)
MP_MANAGERS_PROXY_CONVERT(DictProxy)
MP_MANAGERS_PROXY_CONVERT(ListProxy)
MP_MANAGERS_PROXY_CONVERT(ValueProxy)
MP_MANAGERS_PROXY_CONVERT(NamespaceProxy)
MP_MANAGERS_PROXY_CONVERT(AcquirerProxy)
MP_MANAGERS_PROXY_CONVERT(EventProxy)
MP_MANAGERS_PROXY_CONVERT(ConditionProxy)
MP_MANAGERS_PROXY_CONVERT(BarrierProxy)
MP_MANAGERS_PROXY_CONVERT(ArrayProxy)
MP_MANAGERS_PROXY_CONVERT(IteratorProxy)
MP_MANAGERS_PROXY_CONVERT(AsyncResultProxy)
MP_MANAGERS_PROXY_CONVERT(PoolProxy)
#undef MP_MANAGERS_PROXY_CONVERT

/// A Token as CPython pickles it (NEWOBJ + BUILD (typeid, address, id)).
template <>
struct Convert<managers::Token> {
  static Object to_object(const managers::Token& t);
  static managers::Token from_object(const Object& o);
};

}  // namespace multiprocessing
