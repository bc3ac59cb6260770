"""External programs: one runner, one adapter per tool family."""
