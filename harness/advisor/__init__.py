"""The upgrade advisor: `check` (is it safe to move this model?), `bisect` (which release broke it?), the hand-over.

check.py and bisect.py are the two commands' flows; question.py reads what they are asked
(environment SPECs, the model); verdict.py answers from a run's cells; search.py decides what a
bisect probes next and releases.py lists the releases; migrations.py and handover.py say which
migrated file was verified where and write it out; words.py says all of it the same way on every
screen and in every report.
"""
