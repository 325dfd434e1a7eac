# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A small local stand-in for the REST API of an Inspur AS13000 array, enough for Cinder's own
AS13000Driver to set up and report stats: it logs in with san_login/san_password
(POST /rest/security/token), then lists the cluster's nodes and the pools with the token it got.
A login with any other password is refused, and so is every call without a token it gave.

Used by awx_credential.py: the job's storage_backend_info passes only when the password the AWX
credential injects (BLOCKSTORE_BACKEND_SAN_PASSWORD) reached the driver.
"""

from __future__ import annotations

import json
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

POOL = "pool0"


class SanEndpoint:
    """Serves on 127.0.0.1 (a free port) until stop(); counts logins it accepted and refused."""

    def __init__(self, login: str, password: str) -> None:
        self.login, self.password = login, password
        self.accepted = self.refused = 0
        self.tokens: set[str] = set()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet
                pass

            def _answer(self, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(200)  # the array answers 200 and says what went wrong in `code`
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except ValueError:
                    body = {}
                if self.path != "/rest/security/token":
                    self._answer({"code": 404, "message": f"no {self.path} here"})
                elif body.get("name") == endpoint.login and body.get("password") == endpoint.password:
                    endpoint.accepted += 1
                    token = secrets.token_hex(8)
                    endpoint.tokens.add(token)
                    self._answer({"code": 0, "data": {"token": token}})
                else:
                    endpoint.refused += 1
                    self._answer({"code": 401, "message": "login refused: wrong user name or password"})

            def do_GET(self) -> None:
                if self.headers.get("X-Auth-Token") not in endpoint.tokens:
                    self._answer({"code": 401, "message": "not logged in"})
                elif self.path == "/rest/cluster/node":
                    self._answer({"code": 0, "data": [{"healthStatus": 1, "ip": "127.0.0.1"}]})
                elif self.path == "/rest/block/pool?type=2":
                    self._answer({"code": 0, "data": [{"name": POOL, "type": 1, "totalCapacity": "100GB",
                                                       "usedCapacity": "10GB"}]})
                else:
                    self._answer({"code": 404, "message": f"no {self.path} here"})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
