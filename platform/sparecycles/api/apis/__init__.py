"""The owners' REST API (v1), one module per resource: auth (root, tokens), projects,
apps, versions, batches, results (work units, outputs, exports); base holds what they share.

The set follows BOINC's remote job submission: create apps and versions, submit
a batch, query batches and jobs, abort and retire, fetch output. Every view is
thin: a nested InputSerializer checks the request, one service or selector does
the work, a nested OutputSerializer shapes the answer. Auth: `Authorization:
Token <key>` (POST auth/token/ with username and password gives one) or the
admin's session. Owners see only their own projects; anything else is a 404.
"""
