{#- Shared by the finance marts (models/marts/finance/), so that spend, budgets and cash flow
    classify a movement and name its owner the same way. -#}

{#- The owner the finance marts group by: the account holder as dim_accounts names it, or, for
    accounts no source names (TrueLayer, Fibank, ICICI, SBI), var unnamed_owner: the deployment's
    own user, as transfer pairing assumes too. -#}
{% macro finance_owner_name(column) -%}
    coalesce(nullif(trim({{ column }}), ''), '{{ var("unnamed_owner", "(unnamed)") }}')
{%- endmacro %}

{#- What a booked movement is in a cash-flow statement, one of:
    transfer_in / transfer_out   a leg of an internal transfer (int_transfers_paired), whatever its category;
    other_transfer_in / _out     categorised `transfer` but with no leg on another connected account
                                 (an own account bankflow does not see, or a person): neither spend nor income;
    income                       an income-tree category (salary, sales, interest, refunds, ...), either sign
                                 (money out there is a reversal and lowers income);
    spend                        a spending category, either sign (money in there is a refund and lowers spend);
    and for `uncategorised` (neither spend nor income in the taxonomy) the sign decides: money out is
    spend, money in is income. Every booked row gets exactly one kind, so the kinds add up to the
    whole movement of money. -#}
{% macro cash_flow_kind(amount, is_internal_transfer, category, is_spend, is_income) -%}
    case
        when {{ is_internal_transfer }} and {{ amount }} >= 0 then 'transfer_in'
        when {{ is_internal_transfer }} then 'transfer_out'
        when {{ category }} = 'transfer' and {{ amount }} >= 0 then 'other_transfer_in'
        when {{ category }} = 'transfer' then 'other_transfer_out'
        when {{ is_income }} then 'income'
        when {{ is_spend }} then 'spend'
        when {{ amount }} >= 0 then 'income'
        else 'spend'
    end
{%- endmacro %}

{#- The day budgets are judged on: var as_of_date (YYYY-MM-DD) when given, else the build's
    current_date. -#}
{% macro finance_as_of_date() -%}
    {%- set as_of = var("as_of_date", none) -%}
    {%- if as_of -%} cast('{{ as_of }}' as date) {%- else -%} current_date {%- endif -%}
{%- endmacro %}

{#- Fails (or warns, at severity warn) with every row whose column is neither zero nor null. -#}
{% test zero_or_null(model, column_name) %}
    select {{ column_name }}
    from {{ model }}
    where {{ column_name }} <> 0
{% endtest %}
