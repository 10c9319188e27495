// assignments/serve_client/starter.cpp — your Server::_dispatch, the heart of a
// manager's serve_client (see README.md here).
//
// Build with this file in place of the library's function, then grade:
//   cmake --preset debug -DMP_ASSIGNMENT=serve_client
//   cmake --build --preset debug -j2
//   ctest --preset debug -L assignment_serve_client --output-on-failure
#include <algorithm>

#include "multiprocessing/exceptions.hpp"
#include "multiprocessing/managers.hpp"

namespace multiprocessing::managers {

// What you are given (managers.hpp, class Server):
//   _lookup(ident)            the Held of an object id: obj (a Referent: call(),
//                             str(), repr(), getvalue(), type_name()), exposed
//                             (its method names), method_to_typeid; KeyError
//                             if no object has that id
//   _proxy_reply(conn, typeid, result)   the whole '#PROXY' reply for a result
//                             that method_to_typeid says must become shared
//   _reduce_error(e)          what '#ERROR' carries for an exception e
//   format_exc(e, "serve_client")        the text a '#TRACEBACK' carries
// The request is an Object holding a 4-tuple: std::get_if<Object::Tuple>(
// &request.variant()), then items[0].as<std::string>() (the id), items[1]
// (the method name), items[2] (the args: a tuple, Args is its items) and
// items[3] (the kwds: a dict, or None for none).  A reply is an
// Object::Tuple{{"#RETURN", value}} and the like.
//
// Python (managers.py, the body of Server.serve_client's loop):
//     try:
//         methodname = obj = None
//         request = recv()
//         ident, methodname, args, kwds = request
//         try:
//             obj, exposed, gettypeid = id_to_obj[ident]
//         except KeyError as ke:
//             try:
//                 obj, exposed, gettypeid = self.id_to_local_proxy_obj[ident]
//             except KeyError:
//                 raise ke
//         if methodname not in exposed:
//             raise AttributeError('method %r of %r object is not in exposed=%r' %
//                                  (methodname, type(obj), exposed))
//         function = getattr(obj, methodname)
//         try:
//             res = function(*args, **kwds)
//         except Exception as e:
//             msg = ('#ERROR', e)
//         else:
//             typeid = gettypeid and gettypeid.get(methodname, None)
//             if typeid:
//                 rident, rexposed = self.create(conn, typeid, res)
//                 token = Token(typeid, self.address, rident)
//                 msg = ('#PROXY', (rexposed, token))
//             else:
//                 msg = ('#RETURN', res)
//     except AttributeError:
//         if methodname is None:
//             msg = ('#TRACEBACK', format_exc())
//         else:
//             try:
//                 fallback_func = self.fallback_mapping[methodname]   # __str__, __repr__, #GETVALUE
//                 result = fallback_func(self, conn, ident, obj, *args, **kwds)
//                 msg = ('#RETURN', result)
//             except Exception:
//                 msg = ('#TRACEBACK', format_exc())
//     except Exception:
//         msg = ('#TRACEBACK', format_exc())
//     ... send(msg)      (serve_client sends what you return)
Object Server::_dispatch(connection::Connection& conn, const Object& request) {
  (void)conn, (void)request;
  throw NotImplementedError(
      "assignment serve_client: Server::_dispatch is still the starter's. Write it: unpack the "
      "request (id, methodname, args, kwds), look the object up, check the method is exposed, "
      "call it, and answer '#RETURN', '#PROXY', '#ERROR' or '#TRACEBACK' "
      "(assignments/serve_client/README.md)");
}

}  // namespace multiprocessing::managers
