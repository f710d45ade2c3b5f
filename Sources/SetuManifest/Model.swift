public enum ManifestPlaceholder {}
