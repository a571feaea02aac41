-- A settlement or ledger entry belongs to one match at most (several rows only for its parts).
select counterpart_key, count(distinct match_key) as matches
from {{ ref('recon_matches') }}
group by counterpart_key
having count(distinct match_key) > 1
