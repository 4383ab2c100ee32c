"""Command-line interface: one sub-command per stage, options from the stages' dataclass configs."""
