using System.Text.Json;

namespace IdDisentangle.Reporting;

/// <summary>Loss and metric curves of a run's metrics.jsonl, drawn with ScottPlot as PNG bytes.</summary>
internal static class Plots
{
    /// <summary>Series name -> (step, value) points, from one record type ("step" or "validation").</summary>
    public static Dictionary<string, List<(double Step, double Value)>> ReadSeries(
        string metricsJsonl,
        string type,
        Func<string, bool> keep
    )
    {
        var series = new Dictionary<string, List<(double, double)>>();
        if (!File.Exists(metricsJsonl))
            return series;
        foreach (var line in File.ReadLines(metricsJsonl))
        {
            using var doc = JsonDocument.Parse(line);
            var root = doc.RootElement;
            if (root.GetProperty("type").GetString() != type)
                continue;
            double step = root.GetProperty("step").GetDouble();
            foreach (var p in root.EnumerateObject())
                if (p.Value.ValueKind == JsonValueKind.Number && keep(p.Name))
                {
                    if (!series.TryGetValue(p.Name, out var list))
                        series[p.Name] = list = [];
                    list.Add((step, p.Value.GetDouble()));
                }
        }
        return series;
    }

    /// <summary>One line plot (PNG) of a series, with a moving average when it is long and noisy.</summary>
    public static byte[] Line(
        string title,
        string yLabel,
        IReadOnlyList<(double Step, double Value)> points,
        int width = 480,
        int height = 300
    )
    {
        var plot = new ScottPlot.Plot();
        var xs = points.Select(p => p.Step).ToArray();
        var ys = points.Select(p => p.Value).ToArray();
        var raw = plot.Add.Scatter(xs, ys);
        raw.LegendText = "value";
        raw.MarkerSize = points.Count > 60 ? 0 : 4;
        if (points.Count >= 20)
        {
            int k = Math.Max(3, points.Count / 20);
            var smooth = ys.Select((_, i) => ys.Skip(Math.Max(0, i - k + 1)).Take(Math.Min(k, i + 1)).Average())
                .ToArray();
            raw.Color = raw.Color.WithAlpha(0.35);
            var s = plot.Add.Scatter(xs, smooth);
            s.LegendText = $"mean of {k}";
            s.MarkerSize = 0;
            s.LineWidth = 2;
        }
        plot.Title(title);
        plot.XLabel("step");
        plot.YLabel(yLabel);
        return plot.GetImageBytes(width, height, ScottPlot.ImageFormat.Png);
    }
}
