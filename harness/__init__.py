"""The real-process test harness shared by tests/, bench/ and chaos/.

It starts and stops the real TriggerMail processes (gunicorn, `manage.py qcluster`) against a database
of their own (`harness.processes`), stands in for SendGrid with a local compatible server that keeps a
ledger of every message (`harness.sendgrid_server`), signs the event webhook's callbacks as SendGrid does
(`harness.sendgrid_webhook`) and puts faults between an SDK and the ingest API (`harness.fault_proxy`).
It lives outside tests/ so the benchmarks and the chaos suite can use it without importing the tests;
the apps never import it (pyproject.toml's import contracts).
"""
