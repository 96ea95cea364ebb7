namespace IdDisentangle.Imaging;

/// <summary>A point in image pixels, pixel centres at integer coordinates.</summary>
internal readonly record struct PixelPoint(double X, double Y);
