"""Arena agents, one file per family. Importing a module here has no side effects."""
