"""Reports people look at: charts of the marts, rendered with matplotlib, in a self-contained HTML
file and as Dagster metadata. `chart_data` reads the marts, `plots` draws, `document` writes the
HTML and markdown, `report` puts them together."""
