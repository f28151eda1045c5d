"""`make bench`: how fast cdtt does its job, each figure beside its raw baseline (see __main__)."""
