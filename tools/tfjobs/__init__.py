"""tfjobs: the jobs of tools/tfref.py (TensorFlow ground truth for slimzoo), one module per job.

tools/tfref.py is the command line; it puts tools/ on sys.path, parses the arguments with the
TensorFlow-free constants of `common`, then imports the chosen job's module (and so TensorFlow)
and calls its cmd_<job>(args).

Jobs (each a `tfref.py` subcommand)
  fixtures     the committed fixtures/ (tiny net checkpoints, dtypes, images, README via `readme`)
  refs         on-demand reference sets in the refs cache (<cache>/NAME, atomic, DONE file)
  dump         TF's view of a checkpoint (also written by fixtures, hashed by refs)
  features     all end points of a resnet_v2 or facenet net for any checkpoint and input
  preprocess   TF's slim-inception and facenet preprocessing of image files

Shared
  common       no TensorFlow: seeds and net specs, ToolError/log, safetensors/json/npy writers,
               seeded inputs and variable values
  tfenv        TensorFlow via tools/tfcompat.py, versions, sessions, graphs, variable randomization
  nets         tf_slim resnet_v2 / facenet inception_resnet_v1: build, run, make checkpoints
  readme       fixtures/README.md

Imports go one way: common <- tfenv <- nets, dump, preprocess <- readme, fixtures, refs, features.
"""
