"""What users call: the CLI, the Python API (`safemlrm.run`, ...), and the verbs beside `run`
(compare, merge, judge-eval, export)."""
