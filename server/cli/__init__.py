"""The `convscope` command: one module per subcommand, argument parsing only; the work lives in
the rooms it calls (training, ood, api)."""
