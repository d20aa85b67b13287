"""``fastmatch serve``: a prepared target fleet behind an HTTP API that schedulers call.

One module per concern, data flowing down the list:

- ``config``: the server's settings and the Kubernetes adapter's (``--k8s-config``).
- ``fleet``: the live fleet: a prepared :class:`fastmatch.TargetIndex`, its targets grouped by
  node, swapped as a whole on reload.
- ``requests``: strict decoding of request bodies (msgspec), errors that name the field.
- ``api``: the JSON API's answers (candidates, explain, check, summary).
- ``k8s``: the Kubernetes scheduler-extender protocol (filter, prioritize).
- ``metrics``: Prometheus metrics.
- ``app``: the Starlette application: routes, limits, the bearer token, the OpenAPI document.
- ``server``: uvicorn, SIGHUP (reload) and SIGTERM (drain, then exit 0).

Its dependencies are the ``serve`` extra: ``pip install 'fastmatch[serve]'``.
"""
