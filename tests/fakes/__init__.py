"""Local stand-ins for outside services, reached over real sockets.

- `tests.fakes.infobip.FakeInfobip`: an HTTP server speaking Infobip's SMS and WhatsApp APIs
  (also runnable as its own process: `python -m tests.fakes.infobip --port P --record FILE`).
- `tests.fakes.smtp.FakeSMTP`: an aiosmtpd SMTP server recording every message it accepts.
"""
