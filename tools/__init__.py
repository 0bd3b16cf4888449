"""Developer checks that are neither tests nor benchmarks: they need root, emulators or other
interpreters, and are run by a make target (see each module's docstring)."""
