"""The tunesmith studio: a web app to generate, listen, read, rate and discover.

``tunesmith studio`` serves it (FastAPI, server-rendered Jinja2 pages with a little plain
JavaScript). Its state is the store (:mod:`tunesmith.store`): accounts, login sessions, the
job queue, pieces, events and listening tests; files live under ``$TUNESMITH_HOME/studio``.
Jobs run in worker processes (:mod:`tunesmith.studio.jobs`), never in a request.
"""
