"""``python -m ncu_advisor`` runs the CLI (useful where the console script is not installed)."""

from ncu_advisor.cli import main

main()
