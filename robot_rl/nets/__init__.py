"""Networks: MLPs (plain and fused ensembles), image trunks and necks, the observation encoder."""
