package benchkit

import (
	"fmt"
	"image/color"
	"os"
	"path/filepath"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"
)

// Panel is one chart of a figure: lines over time (seconds).
type Panel struct {
	Title, YLabel string
	Lines         []Line
}

// Line is one named series; each segment is drawn as its own polyline (a
// process that was restarted starts a new segment), all in one colour.
type Line struct {
	Name     string
	Segments [][]Point
	Scatter  bool // points instead of lines
}

var lineColors = []color.RGBA{
	{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
	{R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
	{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
	{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff},
	{R: 0x94, G: 0x67, B: 0xbd, A: 0xff},
}

// WritePanels draws the panels one above the other into path, as SVG or
// PNG by its extension, creating its folder.
func WritePanels(path, title string, panels []Panel) error {
	rows := make([][]*plot.Plot, len(panels))
	for i, pn := range panels {
		p := plot.New()
		p.Title.Text = pn.Title
		if i == 0 && title != "" {
			p.Title.Text = title + "\n" + pn.Title
		}
		p.X.Label.Text = "seconds"
		p.Y.Label.Text = pn.YLabel
		p.Add(plotter.NewGrid())
		p.Legend.Top = true
		p.Legend.Left = true
		for li, ln := range pn.Lines {
			col := lineColors[li%len(lineColors)]
			for si, seg := range ln.Segments {
				if len(seg) == 0 {
					continue
				}
				xys := make(plotter.XYs, len(seg))
				for k, pt := range seg {
					xys[k].X, xys[k].Y = pt.T, pt.V
				}
				var th plot.Thumbnailer
				if ln.Scatter {
					sc, err := plotter.NewScatter(xys)
					if err != nil {
						return fmt.Errorf("plot %s/%s: %w", pn.Title, ln.Name, err)
					}
					sc.Color = col
					sc.Radius = vg.Points(1.2)
					sc.Shape = draw.CircleGlyph{}
					p.Add(sc)
					th = sc
				} else {
					l, err := plotter.NewLine(xys)
					if err != nil {
						return fmt.Errorf("plot %s/%s: %w", pn.Title, ln.Name, err)
					}
					l.Color = col
					l.Width = vg.Points(1)
					p.Add(l)
					th = l
				}
				if si == 0 {
					p.Legend.Add(ln.Name, th)
				}
			}
		}
		rows[i] = []*plot.Plot{p}
	}
	w, h := 10*vg.Inch, vg.Length(len(panels))*2.6*vg.Inch
	var (
		canvas vg.CanvasWriterTo
		dc     draw.Canvas
	)
	switch strings.ToLower(filepath.Ext(path)) {
	case ".svg":
		c := vgsvg.New(w, h)
		canvas, dc = c, draw.New(c)
	case ".png":
		c := vgimg.New(w, h)
		canvas, dc = vgimg.PngCanvas{Canvas: c}, draw.New(c)
	default:
		return fmt.Errorf("plot %s: want .svg or .png", path)
	}
	tiles := draw.Tiles{Rows: len(panels), Cols: 1, PadX: vg.Millimeter, PadY: 4 * vg.Millimeter,
		PadTop: 2 * vg.Millimeter, PadBottom: 2 * vg.Millimeter, PadLeft: 2 * vg.Millimeter, PadRight: 4 * vg.Millimeter}
	canvases := plot.Align(rows, tiles, dc)
	for i := range rows {
		rows[i][0].Draw(canvases[i][0])
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := canvas.WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("plot %s: %w", path, err)
	}
	return f.Close()
}
