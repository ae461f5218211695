"""Drive one Zaqar node through python-zaqarclient's websocket transport
and print what each step returned as one JSON object on stdout.

usage: zaqarclient_ws_scenario.py WS_URL QUEUE PROJECT [CA_FILE]

The transport is the one python-zaqarclient documents for websockets:
zaqarclient.transport.get_transport_for(ws_url) with low-level
request.Request objects whose content is the action's body (its
high-level Client cannot put queue names in websocket bodies). It
authenticates first (any token is accepted without Keystone), then sends
one frame per request and reads one frame back; statuses 400/403/404/...
raise zaqarclient errors.

With CA_FILE (a wss:// URL), the node is verified with that CA bundle.
python-zaqarclient 2.4.0 registers no transport for wss:// and its
websocket transport passes no TLS options to websocket-client, so the
script uses that transport's class with its connection hook
(_create_connection) giving websocket-client the CA as sslopt ca_certs.

The Go test (websocket_test.go) asserts on the JSON. On an exception the
object carries "failed_step" and "error" (a traceback) and the exit status
is 1.
"""
import json
import sys
import traceback

url, queue, project = sys.argv[1:4]
ca = sys.argv[4] if len(sys.argv) > 4 else None
keep = queue + '-kept'
out = {}
step = 'import'
try:
    from zaqarclient import errors
    from zaqarclient import transport
    from zaqarclient.transport import request
    from zaqarclient.transport import ws as ws_transport

    class VerifiedWebsocketTransport(ws_transport.WebsocketTransport):
        def _create_connection(self, endpoint):
            return ws_transport.websocket.create_connection(
                endpoint, sslopt={'ca_certs': ca})

    def open_transport():
        if ca:
            return VerifiedWebsocketTransport(conf)
        return transport.get_transport_for(url, version=2, options=conf)

    conf = {'auth_opts': {'backend': 'keystone',
                          'options': {'os_auth_token': 'no-keystone-here',
                                      'os_project_id': project}}}

    def call(ws, action, body=None):
        """Send one action; return [status, body] or raise."""
        content = json.dumps(body) if body is not None else None
        resp = ws.send(request.Request(url, action, content=content))
        return [resp.status_code, json.loads(resp.content)]

    def refused(ws, action, body):
        """Send an action that must fail; return the error's class name
        and the server's error text."""
        try:
            got = call(ws, action, body)
        except errors.ZaqarError as e:
            return [type(e).__name__, str(e)]
        raise AssertionError('%s %s was not refused: %s' % (action, body, got))

    with open_transport() as ws:
        step = 'ping'
        out['ping'] = call(ws, 'ping_node')[0]

        step = 'queue_create'
        out[step] = call(ws, 'queue_create',
                         {'queue_name': queue,
                          'metadata': {'description': 'websocket'}})
        out['queue_create_again'] = call(ws, 'queue_create',
                                         {'queue_name': queue})
        step = 'queue_list'
        out[step] = call(ws, 'queue_list', {'detailed': True})
        step = 'queue_get'
        out[step] = call(ws, 'queue_get', {'queue_name': queue})

        step = 'post'
        status, body = call(ws, 'message_post', {
            'queue_name': queue,
            'messages': [{'body': {'seq': i}, 'ttl': 600} for i in range(5)]})
        out['post_status'] = status
        out['posted_ids'] = body['message_ids']

        step = 'list_without_echo'
        out[step] = call(ws, 'message_list', {'queue_name': queue})[1]
        step = 'list_paged'
        paged, marker = [], None
        for _ in range(10):
            body = {'queue_name': queue, 'echo': True, 'limit': 2}
            if marker:
                body['marker'] = marker
            page = call(ws, 'message_list', body)[1]
            if not page['messages']:
                break
            paged += [{'id': m['id'], 'body': m['body'], 'ttl': m['ttl']}
                      for m in page['messages']]
            marker = page['marker']
        out[step] = paged
        step = 'get'
        out[step] = call(ws, 'message_get', {
            'queue_name': queue, 'message_id': out['posted_ids'][4]})[1]
        step = 'get_many'
        out[step] = [m['id'] for m in call(ws, 'message_get_many', {
            'queue_name': queue,
            'message_ids': out['posted_ids'][:2]})[1]['messages']]

        step = 'claim'
        status, body = call(ws, 'claim_create', {
            'queue_name': queue, 'limit': 2, 'ttl': 60, 'grace': 60})
        claim_id = body['claim_id']
        out[step] = {'status': status, 'id': claim_id,
                     'ids': [m['id'] for m in body['messages']],
                     'claim_ids': [m['claim_id'] for m in body['messages']]}
        step = 'claim_update'
        out[step] = call(ws, 'claim_update', {
            'queue_name': queue, 'claim_id': claim_id, 'ttl': 120})
        out['claim_get'] = call(ws, 'claim_get', {
            'queue_name': queue, 'claim_id': claim_id})[1]['ttl']
        step = 'list_include_claimed'
        out['list_unclaimed'] = [m['id'] for m in call(ws, 'message_list', {
            'queue_name': queue, 'echo': True})[1]['messages']]
        out['list_include_claimed'] = [
            m['id'] for m in call(ws, 'message_list', {
                'queue_name': queue, 'echo': True,
                'include_claimed': True})[1]['messages']]

        step = 'delete_claimed_without_claim'
        out[step] = refused(ws, 'message_delete', {
            'queue_name': queue, 'message_id': out['claim']['ids'][0]})
        step = 'delete_with_claim'
        out[step] = call(ws, 'message_delete', {
            'queue_name': queue, 'message_id': out['claim']['ids'][0],
            'claim_id': claim_id})[0]
        step = 'stats_after_delete'
        out[step] = call(ws, 'queue_get_stats', {'queue_name': queue})[1]
        step = 'claim_delete'
        out[step] = call(ws, 'claim_delete', {
            'queue_name': queue, 'claim_id': claim_id})
        out['claim_get_after_delete'] = refused(ws, 'claim_get', {
            'queue_name': queue, 'claim_id': claim_id})

        step = 'pop'
        out[step] = call(ws, 'message_delete_many', {
            'queue_name': queue, 'pop': 1})[1]['messages']
        step = 'delete_many'
        out[step] = call(ws, 'message_delete_many', {
            'queue_name': queue, 'message_ids': out['posted_ids'][2:4]})[0]
        step = 'stats_after_deletes'
        out[step] = call(ws, 'queue_get_stats', {'queue_name': queue})[1]

        step = 'bad_request'
        out[step] = refused(ws, 'message_post', {'queue_name': queue})

        step = 'queue_delete'
        out[step] = call(ws, 'queue_delete', {'queue_name': queue})
        out['stats_after_queue_delete'] = refused(
            ws, 'queue_get_stats', {'queue_name': queue})
        out['queue_list_after_delete'] = call(ws, 'queue_list')[1]

        step = 'kept'
        out[step] = call(ws, 'message_post', {
            'queue_name': keep,
            'messages': [{'body': {'kept': True}}]})[1]['message_ids']
except Exception:
    out['failed_step'] = step
    out['error'] = traceback.format_exc()

print(json.dumps(out, sort_keys=True))
sys.exit(1 if 'error' in out else 0)
