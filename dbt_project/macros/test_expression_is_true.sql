{#- Fails with every row for which `expression` (SQL over the model's columns) is not true;
    a null counts as a failure. -#}
{% test expression_is_true(model, expression, column_name=none) %}
    select *
    from {{ model }}
    where not coalesce({{ expression }}, false)
{% endtest %}
