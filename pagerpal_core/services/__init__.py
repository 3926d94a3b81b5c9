"""Services: `verb_noun(session, ..., *, now, actor)` functions. The caller commits."""
