"""Testing tools shipped for the project's tests and benchmarks (and for users who want to test
their own judge or reviser setups): :mod:`.fault_server`, an OpenAI-compatible server on
127.0.0.1 that injects faults by a seeded plan. Nothing here is used by the plugin itself."""
