"""Recommendation: collaborative filtering from listening events (implicit's ALS) blended
with content similarity (the MIR feature layer), a listener simulator, offline evaluation
and personalised generation."""
