-- SQLite twin of migrations/postgres/2026-11-28-000004_categories/down.sql: same rows.
-- Removes exactly the rows up.sql inserted, children before parents (parent_id is a foreign key).
-- Fails if a venue still points at one of these categories, rather than orphaning it.

-- Third level.
DELETE FROM categories WHERE id IN (
    'italian-restaurant', 'chinese-restaurant', 'indian-restaurant', 'thai-restaurant',
    'french-restaurant', 'seafood-restaurant',
    'church', 'mosque', 'synagogue', 'temple'
);

-- Second level.
DELETE FROM categories WHERE id IN (
    'restaurant', 'pizza', 'burger', 'sushi', 'ramen', 'tacos', 'bakery', 'vegetarian', 'fast-food',
    'food-truck', 'ice-cream-shop',
    'cafe', 'coffee-shop', 'tea-room', 'bubble-tea', 'juice-bar',
    'bar', 'pub', 'cocktail-bar', 'wine-bar', 'brewery', 'sports-bar', 'nightclub', 'karaoke',
    'park', 'beach', 'hiking-trail', 'playground', 'garden', 'plaza', 'scenic-lookout',
    'campground', 'lake',
    'museum', 'art-gallery', 'movie-theater', 'theater', 'concert-hall', 'music-venue', 'stadium',
    'zoo', 'aquarium',
    'airport', 'train-station', 'bus-station', 'metro-station', 'ferry-terminal', 'hotel', 'hostel',
    'parking', 'gas-station', 'ev-charging-station',
    'supermarket', 'convenience-store', 'bookstore', 'clothing-store', 'electronics-store',
    'shopping-mall', 'farmers-market', 'bank', 'hair-salon',
    'office', 'coworking-space', 'meeting-room', 'convention-center', 'tech-startup', 'factory',
    'private-home', 'apartment-building', 'housing-development', 'assisted-living',
    'mobile-home-park',
    'university', 'college', 'community-college', 'high-school', 'middle-school',
    'elementary-school', 'lecture-hall', 'student-center', 'residence-hall',
    'hospital', 'emergency-room', 'urgent-care', 'medical-clinic', 'dentist', 'pharmacy',
    'optometrist', 'veterinarian',
    'gym', 'yoga-studio', 'swimming-pool', 'climbing-gym', 'tennis-court', 'basketball-court',
    'soccer-field', 'golf-course',
    'city-hall', 'courthouse', 'post-office', 'police-station', 'fire-station', 'library',
    'community-center', 'place-of-worship'
);

-- Top level.
DELETE FROM categories WHERE id IN (
    'food', 'coffee', 'nightlife', 'outdoors', 'arts', 'travel', 'shops', 'work', 'home',
    'education', 'health', 'sports', 'community'
);
