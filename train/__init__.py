"""`python -m train`: one subcommand per model, plus evaluate."""
