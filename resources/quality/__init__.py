"""Great Expectations suites (files under quality/suites) run against Postgres in SQL."""
