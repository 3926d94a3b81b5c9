"""The pagerpal-worker process: leadership, the dispatch/escalation loop, providers. No Flask."""
