import tests.jobtasks  # noqa: F401  (registers the test handlers)
