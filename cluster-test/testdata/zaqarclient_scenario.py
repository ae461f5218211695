"""Drive one Zaqar node with python-zaqarclient (v2, noauth) and print what
each step returned as one JSON object on stdout.

usage: zaqarclient_scenario.py URL QUEUE PROJECT [CA_FILE]

With CA_FILE (an https:// URL), the clients verify the node with that CA
bundle. python-zaqarclient takes a CA only in its keystone auth backend
(option "cacert"); given a token it asks no Keystone, and a node in
noauth mode ignores the token, so the clients use that backend. Its
signed-url backend has no CA option: that one client finds the CA through
requests' REQUESTS_CA_BUNDLE, set for its step only.

The Go test (pythonclient_test.go) asserts on the JSON. On an exception the
object carries "failed_step" and "error" (a traceback) and the exit status
is 1.
"""
import json
import os
import sys
import traceback

url, queue, project = sys.argv[1:4]
ca = sys.argv[4] if len(sys.argv) > 4 else None
out = {}
step = 'import'
try:
    from zaqarclient.queues.v1 import core as core_v1
    from zaqarclient.queues.v2 import client
    from zaqarclient.queues.v2 import core as core_v2

    def new_client(client_uuid):
        auth = {'backend': 'noauth', 'options': {'os_project_id': project}}
        if ca:
            auth = {'backend': 'keystone',
                    'options': {'os_auth_token': 'no-keystone-here',
                                'os_project_id': project, 'cacert': ca}}
        return client.Client(url, version=2, conf={
            'client_uuid': client_uuid, 'auth_opts': auth})

    producer = new_client('9f1c2d3e4a5b4c6d8e7f0a1b2c3d4e5f')
    consumer = new_client('1a2b3c4d5e6f4a7b8c9d0e1f2a3b4c5d')

    def exists():
        # Queue.exists() refuses to run on API >= 1.1, so call the core
        # function it would call (HEAD /v2/queues/{q}).
        req, trans = producer._request_and_transport()
        return core_v1.queue_exists(trans, req, queue)

    step = 'exists_before_create'
    out[step] = exists()
    step = 'create'
    q = producer.queue(queue, force_create=True)
    out['exists_after_create'] = exists()

    step = 'set_metadata'
    out[step] = q.metadata(new_meta={'description': 'python', 'n': 1})
    step = 'get_metadata'
    out[step] = q.metadata(force_reload=True)

    step = 'post'
    res = q.post([{'body': {'seq': i}, 'ttl': 600} for i in range(6)])
    out['posted_ids'] = [h.rsplit('/', 1)[1] for h in res['resources']]

    step = 'list_echo_paged'
    out[step] = [{'id': m.id, 'ttl': m.ttl, 'body': m.body}
                 for m in q.messages(echo=True, limit=2).stream()]
    step = 'list_own_without_echo'
    out[step] = [m.body for m in q.messages(limit=2).stream()]
    step = 'list_as_consumer'
    cq = consumer.queue(queue, auto_create=False)
    out[step] = [m.body for m in cq.messages(limit=20)]
    step = 'get_many'
    out[step] = [m.id for m in q.messages(*out['posted_ids'][:2])]
    step = 'get_one'
    out[step] = q.message(out['posted_ids'][5]).body

    step = 'claim'
    claim = cq.claim(ttl=60, grace=60, limit=4)
    claimed = list(claim)
    out[step] = {'id': claim.id, 'bodies': [m.body for m in claimed],
                 'claim_ids': [m.claim_id for m in claimed]}
    step = 'claim_update'
    claim.update(ttl=120, grace=90)
    out['claim_ttl_after_update'] = cq.claim(id=claim.id).ttl
    step = 'delete_with_claim'
    for m in claimed[:2]:
        m.delete()
    out['deleted_with_claim'] = [m.body for m in claimed[:2]]
    step = 'stats_after_delete'
    out[step] = q.stats['messages']
    step = 'release_claim'
    claim.delete()
    out['stats_after_release'] = q.stats['messages']

    step = 'pop'
    out['popped'] = [m.body for m in cq.pop(count=2)]
    out['stats_after_pop'] = q.stats['messages']

    step = 'signed_url'
    signed = q.signed_url(paths=['messages'], methods=['GET'],
                          ttl_seconds=600)
    out[step] = signed
    step = 'list_with_signed_url'
    if ca:
        os.environ['REQUESTS_CA_BUNDLE'] = ca
    signed_client = client.Client(url, version=2, conf={
        'client_uuid': '2b3c4d5e6f7a4b8c9d0e1f2a3b4c5d6e',
        'auth_opts': {'backend': 'signed-url',
                      'options': {'signature': signed['signature'],
                                  'expires': signed['expires'],
                                  'methods': signed['methods'],
                                  'paths': signed['paths'],
                                  'os_project_id': signed['project']}}})
    sq = signed_client.queue(queue, auto_create=False)
    out[step] = [m.body for m in sq.messages(limit=20)]
    os.environ.pop('REQUESTS_CA_BUNDLE', None)

    step = 'queue_list_paged'
    queues, count = producer.queues(limit=1, with_count=True)
    out[step] = {'names': [x.name for x in queues.stream()], 'count': count}

    step = 'ping'
    out[step] = producer.ping()
    step = 'health'
    # /v2/health needs the admin role; noauth trusts X-Roles.
    req, trans = producer._request_and_transport()
    req.headers['X-Roles'] = 'admin'
    health = core_v2.health(trans, req)
    out[step] = {'storage_reachable': health.get('storage_reachable'),
                 'succeeded': sorted(k for k, v in
                                     health.get('operation_status', {}).items()
                                     if v.get('succeeded'))}

    step = 'delete'
    q.delete()
    out['exists_after_delete'] = exists()
except Exception:
    out['failed_step'] = step
    out['error'] = traceback.format_exc()

print(json.dumps(out, sort_keys=True))
sys.exit(1 if 'error' in out else 0)
