"""PagerPal's core: models, settings and services. Never imports Flask."""
