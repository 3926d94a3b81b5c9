"""The worker's steps, one module each; `pagerpal_worker.loop.STEPS` declares their order."""
