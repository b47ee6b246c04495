"""Geolocation (task ``geolocation``, Geo-R): answer parsing, distance rewards, accuracy at km.

``parse`` reads coordinates out of completions (the answer contract), ``rewards`` holds Geo-R's
distance × format reward, ``score`` the evaluation metrics and the task's scorer.
"""
