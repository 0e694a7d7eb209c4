"""The engagement mart's runtime: settings, the landing zone (raw batches and their
manifests), the quality gate, the warehouse (load, dbt build, publish), the headline report,
the steps of a data interval and the `engagement` command line."""
