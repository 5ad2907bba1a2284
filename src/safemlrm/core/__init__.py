"""The kernel: types, protocols, registries, the run store, config and the helpers every layer shares.

Nothing here imports a plugin package, an analysis, the pipeline or a verb (tests/test_layers.py checks it).
Plugin authors import from `safemlrm.plugin_api`, which re-exports what they need from here.
"""
