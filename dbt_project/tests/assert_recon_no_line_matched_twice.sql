-- A bank line belongs to one match at most (a counterpart to one row: unique in the yml).
select transaction_key, count(distinct match_key) as matches
from {{ ref('recon_matches') }}
group by transaction_key
having count(distinct match_key) > 1
