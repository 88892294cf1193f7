"""`python -m bench.serve PORT`: the engine's WSGI app on 127.0.0.1, for the HTTP scenarios.

Django's threaded development server, with one change: TCP_NODELAY on each connection.
Without it the server writes the response headers and body in two small packets, and
Nagle's algorithm against the client's delayed ACK holds the second one for about 40 ms:
`manage.py runserver` measured 108 ms a call where the same call from Python took 37 ms.
A production server (gunicorn, uwsgi) sets TCP_NODELAY as well.
"""

from __future__ import annotations

import os
import socket
import sys
from typing import Any


def main(argv: list[str]) -> int:
    port = int(argv[0])
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "automation.settings")
    import django

    django.setup()
    import socketserver

    from django.core.servers.basehttp import WSGIRequestHandler, WSGIServer
    from django.core.wsgi import get_wsgi_application

    class Handler(WSGIRequestHandler):
        def setup(self) -> None:
            super().setup()
            sock: Any = self.connection  # the accepted socket (typed loosely by the stubs)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, format: str, *args: object) -> None:
            pass  # a line per request would cost more than the request

    class Server(socketserver.ThreadingMixIn, WSGIServer):
        daemon_threads = True

    server = Server(("127.0.0.1", port), Handler, ipv6=False)
    server.set_app(get_wsgi_application())
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
