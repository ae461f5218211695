"""Drive a Keystone-mode Zaqar cluster with python-zaqarclient, which logs
in to Keystone and finds the service in Keystone's catalog (service type
"messaging", public interface), and print what each step returned as one
JSON object on stdout.

usage: zaqarclient_keystone.py AUTH_URL USER PASSWORD PROJECT QUEUE

The Go test (keystone_test.go) asserts on the JSON. On an exception the
object carries "failed_step" and "error" (a traceback) and the exit status
is 1.
"""
import json
import sys
import traceback

auth_url, user, password, project, queue = sys.argv[1:6]
out = {}
step = 'import'
try:
    from keystoneauth1 import session as ks_session
    from keystoneauth1.identity import v3
    from zaqarclient.queues.v1 import core as core_v1
    from zaqarclient.queues.v2 import client
    from zaqarclient.queues.v2 import core as core_v2

    step = 'login'
    auth = v3.Password(auth_url=auth_url, username=user, password=password,
                       user_domain_id='default', project_name=project,
                       project_domain_id='default')
    sess = ks_session.Session(auth=auth)
    out['project_id'] = sess.get_project_id()
    out['endpoint'] = sess.get_endpoint(service_type='messaging',
                                        interface='public')
    # No URL: the keystone auth backend takes the endpoint from the
    # catalog and the token from the session.
    zc = client.Client(None, version=2, session=sess, conf={
        'client_uuid': '7a8b9c0d1e2f4a3b8c5d6e7f8a9b0c1d',
        'auth_opts': {'backend': 'keystone',
                      'options': {'os_auth_url': auth_url}}})

    def exists():
        req, trans = zc._request_and_transport()
        return core_v1.queue_exists(trans, req, queue)

    out['exists'] = []
    step = 'exists_before_create'
    out['exists'].append(exists())
    step = 'create'
    q = zc.queue(queue, force_create=True)
    q.metadata(new_meta={'owner': user})
    out['exists'].append(exists())

    step = 'post'
    q.post([{'body': {'seq': i}, 'ttl': 600} for i in range(2)])
    step = 'list'
    out['listed'] = [m.body for m in q.messages(echo=True, limit=10)]

    step = 'claim'
    claim = q.claim(ttl=60, grace=60, limit=1)
    claimed = list(claim)
    out['claimed'] = [m.body for m in claimed]
    step = 'delete_claimed'
    for m in claimed:
        m.delete()
    step = 'stats'
    out['stats'] = q.stats['messages']

    step = 'queue_list'
    queues, _ = zc.queues(limit=20)
    out['queues'] = [x.name for x in queues]

    step = 'share'
    signed = q.signed_url(paths=['messages'], methods=['GET'],
                          ttl_seconds=600)
    out['share'] = signed
    step = 'list_with_signed_url'
    # Signed requests carry no token: they bypass Keystone.
    signed_client = client.Client(out['endpoint'], version=2, conf={
        'client_uuid': '2b3c4d5e6f7a4b8c9d0e1f2a3b4c5d6e',
        'auth_opts': {'backend': 'signed-url',
                      'options': {'signature': signed['signature'],
                                  'expires': signed['expires'],
                                  'methods': signed['methods'],
                                  'paths': signed['paths'],
                                  'os_project_id': signed['project']}}})
    sq = signed_client.queue(queue, auto_create=False)
    out['signed_list'] = [m.body for m in sq.messages(limit=20)]

    step = 'health'
    # The health report needs the admin role, which the user lacks;
    # claiming it with X-Roles changes nothing under Keystone.
    req, trans = zc._request_and_transport()
    req.headers['X-Roles'] = 'admin'
    try:
        core_v2.health(trans, req)
        out['health_error'] = ''
    except Exception as e:  # the client's ForbiddenError
        out['health_error'] = type(e).__name__ + ': ' + str(e)

    step = 'delete'
    q.delete()
    out['exists'].append(exists())
except Exception:
    out['failed_step'] = step
    out['error'] = traceback.format_exc()

print(json.dumps(out, sort_keys=True))
sys.exit(1 if 'error' in out else 0)
