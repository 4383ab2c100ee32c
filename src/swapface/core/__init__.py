"""Foundation shared by every stage: errors, registries, configs, safe file I/O, progress."""
