"""kamhttp's tests; a package so that `tests.servers` can be imported by benchmarks and demos."""
