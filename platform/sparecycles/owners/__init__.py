"""The project owners' console: the admin pages for projects, apps, versions and batches.

An edge: it calls projects' and the scheduler's services (uploads, abort, retire) and
reads their selectors, so projects itself never imports the scheduler.
"""
