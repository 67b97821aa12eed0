"""What is installed: manifests, the versions under the prefix root and their links, the record
of activation files, and the artifact format."""
