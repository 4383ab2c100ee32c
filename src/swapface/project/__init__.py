"""One-command projects: extract both videos, train, convert — resumable stage by stage."""
