"""The repository's own delivery tooling, behind the `gitops` command."""
