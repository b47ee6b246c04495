"""Step ↔ reward ↔ eval contracts: task names, answer forms, parsers and geometry, one place per family.

Steps write rows in the form a contract defines, rewards and ``geodata eval`` read them with the
same contract; no contract imports a source reader.
"""
