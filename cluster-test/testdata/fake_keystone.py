"""A stand-in for Keystone v3, just enough for `openstack messaging ...`.

usage: fake_keystone.py MESSAGING_URL

The openstack CLI cannot send a project id with --os-auth-type none (the
"none" plugin rejects project_id), and Zaqar answers every request without
X-Project-ID with 400. So the CLI authenticates with a token against this
server instead: version discovery on GET, and POST /v3/auth/tokens answers
with a token scoped to the requested project whose catalog's messaging
endpoint is MESSAGING_URL. The zaqar server runs in noauth mode and ignores
the token; python-zaqarclient sends the project id as X-Project-Id.

Prints the port it listens on (127.0.0.1), then serves until killed.
"""
import datetime
import json
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

MESSAGING_URL = sys.argv[1]


class Handler(BaseHTTPRequestHandler):
    def log_message(self, fmt, *args):
        sys.stderr.write('fake-keystone: ' + (fmt % args) + '\n')

    def _send(self, code, body, headers=None):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        base = 'http://%s:%d' % self.server.server_address
        self._send(200, {'version': {
            'id': 'v3.14', 'status': 'stable',
            'updated': '2020-01-01T00:00:00Z',
            'links': [{'rel': 'self', 'href': base + '/v3/'}],
            'media-types': [{
                'base': 'application/json',
                'type': 'application/vnd.openstack.identity-v3+json'}]}})

    def do_POST(self):
        n = int(self.headers.get('Content-Length', 0))
        req = json.loads(self.rfile.read(n) or b'{}')
        scope = req.get('auth', {}).get('scope', {}).get('project', {})
        project = scope.get('id') or scope.get('name') or 'p1'
        now = datetime.datetime.now(datetime.timezone.utc)
        fmt = '%Y-%m-%dT%H:%M:%S.000000Z'
        domain = {'id': 'default', 'name': 'Default'}
        self._send(201, {'token': {
            'methods': ['token'],
            'issued_at': now.strftime(fmt),
            'expires_at': (now + datetime.timedelta(hours=1)).strftime(fmt),
            'user': {'id': 'u1', 'name': 'u1', 'domain': domain},
            'project': {'id': project, 'name': project, 'domain': domain},
            'roles': [{'id': 'r1', 'name': 'member'}],
            'catalog': [{
                'type': 'messaging', 'name': 'zaqar', 'id': 's1',
                'endpoints': [{
                    'id': 'e1', 'interface': 'public',
                    'region': 'RegionOne', 'region_id': 'RegionOne',
                    'url': MESSAGING_URL}]}]}},
            {'X-Subject-Token': 'fake-token'})


server = HTTPServer(('127.0.0.1', 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
