using IdDisentangle.Runtime;
using SkiaSharp;
using TorchSharp;
using static TorchSharp.torch;

namespace IdDisentangle.Imaging;

/// <summary>How a grid of images is laid out for a report.</summary>
internal sealed record GridLayout
{
    /// <summary>Pixels between cells and around the grid.</summary>
    public int Padding { get; init; } = 2;

    /// <summary>Grey level of the background and of empty cells, in [0,1].</summary>
    public float Background { get; init; } = 1f;

    /// <summary>Text drawn left of each row (null: no label column).</summary>
    public IReadOnlyList<string>? RowLabels { get; init; }

    /// <summary>Text drawn above each column (null: no label row).</summary>
    public IReadOnlyList<string>? ColumnLabels { get; init; }
    public float FontSize { get; init; } = 14f;
}

/// <summary>Image tables for reports: rows x columns of equal-size cells, optional labels.</summary>
internal static class ImageGrid
{
    /// <summary>Lays out a batch [N,3,H,W] row by row, <paramref name="columns"/> per row.</summary>
    public static Tensor Compose(Tensor images, int columns, GridLayout? layout = null)
    {
        if (images.dim() != 4)
            throw new ArgumentException($"expected [N,3,H,W], got [{string.Join(",", images.shape)}]");
        int n = (int)images.shape[0];
        if (columns <= 0)
            throw new ArgumentOutOfRangeException(nameof(columns), "columns must be positive");
        int rows = (n + columns - 1) / columns;
        var cells = Enumerable.Range(0, n).Select(i => (Tensor?)images[i]).ToList();
        try
        {
            return Compose(cells, rows, columns, layout);
        }
        finally
        {
            foreach (var c in cells)
                c?.Dispose();
        }
    }

    /// <summary>
    /// Lays out cells (row-major; null or missing cells stay empty) on a rows x columns table. Cells of another
    /// size than the first one are resized to it.
    /// </summary>
    public static Tensor Compose(IReadOnlyList<Tensor?> cells, int rows, int columns, GridLayout? layout = null)
    {
        layout ??= new GridLayout();
        if (rows <= 0 || columns <= 0)
            throw new ArgumentException("a grid needs at least one row and one column");
        if (cells.Count > rows * columns)
            throw new ArgumentException($"{cells.Count} cells do not fit {rows}x{columns}");
        var first =
            cells.FirstOrDefault(c => c is not null) ?? throw new ArgumentException("a grid needs at least one image");
        int h = (int)first.shape[^2],
            w = (int)first.shape[^1],
            p = layout.Padding;

        using var scope = torch.NewDisposeScope();
        var canvas = KeptScalars.Full(
            [3, rows * (h + p) + p, columns * (w + p) + p],
            layout.Background,
            ScalarType.Float32
        );
        using (torch.no_grad())
        {
            for (int i = 0; i < cells.Count; i++)
            {
                var c = cells[i];
                if (c is null)
                    continue;
                var img = c.detach().to(ScalarType.Float32).cpu();
                if (img.dim() == 4)
                    img = img[0];
                if (img.shape[0] == 1)
                    img = img.expand(3, -1, -1);
                img = ImageOps.Resize(img, h, w, ResizeFilter.Bilinear);
                int r = i / columns,
                    col = i % columns;
                canvas.narrow(1, p + r * (h + p), h).narrow(2, p + col * (w + p), w).copy_(img);
            }
        }
        if (layout.RowLabels is null && layout.ColumnLabels is null)
            return canvas.MoveToOuterDisposeScope();
        return AddLabels(canvas, rows, columns, h, w, layout).MoveToOuterDisposeScope();
    }

    static Tensor AddLabels(Tensor grid, int rows, int columns, int h, int w, GridLayout layout)
    {
        using var font = new SKFont(SKTypeface.Default, layout.FontSize);
        using var paint = new SKPaint { Color = SKColors.Black, IsAntialias = true };
        int p = layout.Padding;
        float lineHeight = layout.FontSize * 1.4f;
        int left = layout.RowLabels is null
            ? 0
            : (int)Math.Ceiling(layout.RowLabels.Select(l => font.MeasureText(l)).DefaultIfEmpty(0).Max()) + 2 * p + 4;
        int top = layout.ColumnLabels is null ? 0 : (int)Math.Ceiling(lineHeight) + p;

        using var body = SkiaTensors.ToBitmap(grid);
        var bg = (byte)Math.Round(Math.Clamp(layout.Background, 0f, 1f) * 255);
        using var bitmap = new SKBitmap(
            new SKImageInfo(body.Width + left, body.Height + top, SKColorType.Rgba8888, SKAlphaType.Opaque)
        );
        using (var canvas = new SKCanvas(bitmap))
        {
            canvas.Clear(new SKColor(bg, bg, bg));
            canvas.DrawBitmap(body, left, top);
            if (layout.ColumnLabels is not null)
                for (int c = 0; c < Math.Min(columns, layout.ColumnLabels.Count); c++)
                {
                    string text = Fit(layout.ColumnLabels[c], font, w);
                    canvas.DrawText(
                        text,
                        left + p + c * (w + p) + w / 2f,
                        top - p - lineHeight * 0.3f,
                        SKTextAlign.Center,
                        font,
                        paint
                    );
                }
            if (layout.RowLabels is not null)
                for (int r = 0; r < Math.Min(rows, layout.RowLabels.Count); r++)
                    canvas.DrawText(
                        layout.RowLabels[r],
                        left - p - 2,
                        top + p + r * (h + p) + h / 2f + layout.FontSize * 0.35f,
                        SKTextAlign.Right,
                        font,
                        paint
                    );
        }
        return SkiaTensors.FromBitmap(bitmap);
    }

    static string Fit(string text, SKFont font, float width)
    {
        if (font.MeasureText(text) <= width)
            return text;
        while (text.Length > 1 && font.MeasureText(text + "…") > width)
            text = text[..^1];
        return text + "…";
    }
}
